package tests

// Fault tests: each module run in-process (as the controller would run
// it) against a lab whose vCenter, KSC or SVM misbehaves, with the outcome
// asserted: success after bounded retries, or a failure whose message
// names the step, and a rerun after the fault clears that converges.
// What module packages and clients already test is not repeated here;
// README.md, "What happens when something fails", maps each behaviour to
// the tests that show it.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/simulator"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/internal/sim/svm"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/ksvla/lightagent/modules"
)

// runModule runs the registered module name in-process and asserts that
// no secret of the lab appears anywhere in its result.
func runModule(t *testing.T, ctx context.Context, l *sim.Lab, name string, args map[string]any, mode ansibletest.Mode) ansible.Result {
	t.Helper()
	e, ok := modules.Registry().Lookup(name)
	require.True(t, ok, "module %s is registered", name)
	res := ansibletest.Run(t, ctx, name, e.New(), args, mode)
	raw, err := json.Marshal(res)
	require.NoError(t, err)
	for _, s := range labSecrets(l) {
		require.NotContains(t, string(raw), s, "%s leaked a secret into its result", name)
	}
	return res
}

// labSecrets are the lab's passwords.
func labSecrets(l *sim.Lab) []string {
	v := l.Vars(l.Dir())
	return []string{v.VCenterPassword, v.KSCPassword, v.SVMKlconfigPassword, v.SVMImagePassword}
}

// The lab's connection options, certificates verified (the default).
var (
	vcArgs  = labtest.VCenterArgs
	kscArgs = labtest.KSCArgs
)

func deployArgs(v sim.Vars, host string, extra map[string]any) map[string]any {
	return labtest.Args(vcArgs(v), map[string]any{
		"datacenter": v.Datacenter, "esxi_hostname": host, "datastore": v.LocalDatastores[host],
		"name": v.SVMs[host], "image": v.NewImage.Path, "version": v.NewVersion, "wait_timeout": 30, "timeout": 120,
	}, extra)
}

func removeArgs(v sim.Vars, host string) map[string]any {
	return labtest.Args(vcArgs(v), kscArgs(v), map[string]any{
		"datacenter": v.Datacenter, "esxi_hostnames": []any{host}, "version": v.OldVersion,
		"target_version": v.NewVersion, "shutdown_timeout": 1, "timeout": 120,
	}, labtest.FleetArgs(v))
}

func factsArgs(v sim.Vars, extra map[string]any) map[string]any {
	return labtest.Args(vcArgs(v), kscArgs(v), map[string]any{
		"datacenter": v.Datacenter, "target_version": v.NewVersion,
		"timeout": 60,
	}, labtest.FleetArgs(v), extra)
}

func faultCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// svmsNamed returns the lab's SVMs called name, across hosts.
func svmsNamed(l *sim.Lab, name string) []sim.SVMStatus {
	var out []sim.SVMStatus
	for _, h := range l.Status().Hosts {
		for _, s := range h.SVMs {
			if s.Name == name {
				out = append(out, s)
			}
		}
	}
	return out
}

// vmsNamed returns the VMs called name as vCenter lists them.
func vmsNamed(t *testing.T, ctx context.Context, s *vsphere.Session, name string) []vsphere.VM {
	t.Helper()
	all, err := s.Inventory(ctx, vsphere.Scope{Details: true})
	require.NoError(t, err)
	var out []vsphere.VM
	for _, vm := range all {
		if vm.Name == name {
			out = append(out, vm)
		}
	}
	return out
}

// assertNoLeftover asserts that no half-imported VM and no orphaned
// folder of name is on the host's local datastore.
func assertNoLeftover(t *testing.T, ctx context.Context, s *vsphere.Session, v sim.Vars, host, name string) {
	t.Helper()
	ds, err := s.Datastore(ctx, nil, v.LocalDatastores[host])
	require.NoError(t, err)
	lo, err := s.FindLeftover(ctx, nil, name, ds)
	require.NoError(t, err)
	assert.True(t, lo.Empty(), "leftover of %s on %s: %+v", name, host, lo)
}

// setTaskDelay slows the simulator's tasks by name (the simulator's task
// names: "PowerOn", "destroy", ...). TaskDelay is a process-wide
// variable of the simulator, so these tests do not run in parallel.
func setTaskDelay(t *testing.T, ms map[string]int) {
	simulator.TaskDelay.MethodDelay = ms
	t.Cleanup(func() { simulator.TaskDelay.MethodDelay = nil })
}

// A slow vCenter: the deploy finishes when its timeout leaves room, and
// fails naming the power-on step and the option when it does not; the
// rerun with a responsive vCenter finishes the deploy.
func TestFaultVCenterSlowTasks(t *testing.T) {
	ctx := faultCtx(t)
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1})
	v := l.Vars(l.Dir())
	s := labtest.VSphere(t, l)
	fast, slow := v.ESXiHosts[0], v.ESXiHosts[1]

	setTaskDelay(t, map[string]int{"PowerOn": 400})
	start := time.Now()
	res := runModule(t, ctx, l, "svm_deploy", deployArgs(v, fast, nil), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.True(t, res.Changed())
	assert.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond, "the delay applied")
	require.Len(t, svmsNamed(l, v.SVMs[fast]), 1)

	setTaskDelay(t, map[string]int{"PowerOn": 3000})
	res = runModule(t, ctx, l, "svm_deploy", deployArgs(v, slow, map[string]any{"timeout": 2}), ansibletest.Mode{})
	require.True(t, res.Failed())
	assert.Contains(t, res.Msg(), "power on vm "+v.SVMs[slow])
	assert.Contains(t, res.Msg(), "(the module ran out of time: option timeout is 2 s)")

	setTaskDelay(t, nil)
	// The power-on the module gave up on may still complete in vCenter;
	// either way the rerun ends with one powered-on, addressed SVM.
	res = runModule(t, ctx, l, "svm_deploy", deployArgs(v, slow, nil), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.NotEmpty(t, ansibletest.Get(res, "svm", "ip"))
	require.NoError(t, l.Sync(ctx))
	got := svmsNamed(l, v.SVMs[slow])
	require.Len(t, got, 1, "no duplicate SVM")
	assert.Equal(t, "on", got[0].Power)
	assertNoLeftover(t, ctx, s, v, slow, v.SVMs[slow])
	assert.Empty(t, l.Gaps())
}

// injectFault makes vCenter fail method on the object called name until
// the returned function clears it.
func injectFault(l *sim.Lab, method, name, message string) func() {
	f := l.VCenter().Faults()
	f.AddRule(&simulator.FaultInjectionRule{MethodName: method, ObjectType: "VirtualMachine", ObjectName: name,
		Probability: 1, FaultType: simulator.FaultTypeGeneric, Message: message, Enabled: true})
	return f.ClearRules
}

// vCenter task faults on power-on (svm_deploy) and on delete
// (svm_remove): the module fails naming the step and the VM, leaves
// nothing the rerun cannot finish, and the rerun converges.
func TestFaultVCenterTaskFailures(t *testing.T) {
	ctx := faultCtx(t)
	// Held on their hosts: esxi-01's old agent, which DRS could move onto
	// esxi-02, would keep esxi-02's old SVM before the fault is reached.
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1, ProtectedVMsStay: true})
	v := l.Vars(l.Dir())
	s := labtest.VSphere(t, l)
	deployHost, removeHost := v.ESXiHosts[0], v.ESXiHosts[1]
	name := v.SVMs[deployHost]

	t.Run("svm_deploy power on", func(t *testing.T) {
		clear := injectFault(l, "PowerOnVM_Task", name, "injected: host busy")
		res := runModule(t, ctx, l, "svm_deploy", deployArgs(v, deployHost, nil), ansibletest.Mode{})
		require.True(t, res.Failed())
		assert.Contains(t, res.Msg(), "power on vm "+name)
		assert.Contains(t, res.Msg(), "injected: host busy")
		left := vmsNamed(t, ctx, s, name)
		require.Len(t, left, 1, "the imported, marked VM stays for the rerun")
		assert.Equal(t, "poweredOff", left[0].PowerState)
		assert.Equal(t, vsphere.RoleSVM, left[0].Marks[vsphere.MarkRole])

		clear()
		res = runModule(t, ctx, l, "svm_deploy", deployArgs(v, deployHost, nil), ansibletest.Mode{Diff: true})
		require.False(t, res.Failed(), res.Msg())
		assert.True(t, res.Changed())
		assert.Equal(t, []any{"power on", "wait for IP"}, res["plan"], "the rerun picks up where the fault stopped it")
		require.NoError(t, l.Sync(ctx))
		got := svmsNamed(l, name)
		require.Len(t, got, 1, "no duplicate SVM")
		assert.Equal(t, "on", got[0].Power)
		assertNoLeftover(t, ctx, s, v, deployHost, name)

		res = runModule(t, ctx, l, "svm_deploy", deployArgs(v, deployHost, nil), ansibletest.Mode{})
		require.False(t, res.Failed(), res.Msg())
		assert.False(t, res.Changed())
	})

	t.Run("svm_remove destroy", func(t *testing.T) {
		labtest.DeployNewSVM(t, l, s, removeHost)
		labtest.UpdateAgents(t, l)
		old := l.VCenter().Inventory().Hosts[1].OldSVM
		clear := injectFault(l, "Destroy_Task", old, "injected: datastore locked")
		res := runModule(t, ctx, l, "svm_remove", removeArgs(v, removeHost), ansibletest.Mode{})
		require.True(t, res.Failed())
		assert.Contains(t, res.Msg(), "remove SVM "+old+" on "+removeHost+": ")
		assert.Contains(t, res.Msg(), "injected: datastore locked")
		require.NoError(t, l.Sync(ctx))
		require.Len(t, svmsNamed(l, old), 1, "the SVM vCenter refused to delete is still there")

		clear()
		res = runModule(t, ctx, l, "svm_remove", removeArgs(v, removeHost), ansibletest.Mode{})
		require.False(t, res.Failed(), res.Msg())
		assert.True(t, res.Changed())
		assert.Equal(t, old, ansibletest.Get(res, "removed", 0, "name"))
		// The lab hears of the deletion through vCenter's property
		// collector, a moment after svm_remove has returned.
		assert.Eventually(t, func() bool { return l.Sync(ctx) == nil && len(svmsNamed(l, old)) == 0 },
			5*time.Second, 20*time.Millisecond, "the lab still lists %s", old)
		assertNoLeftover(t, ctx, s, v, removeHost, old)

		res = runModule(t, ctx, l, "svm_remove", removeArgs(v, removeHost), ansibletest.Mode{})
		require.False(t, res.Failed(), res.Msg())
		assert.False(t, res.Changed())
	})
	assert.Empty(t, l.Gaps(), "no protected VM was without a compatible SVM")
}

// faultKSC is a KSC server holding a copy of a lab KSC's records, with
// the faults the lab's own server is not configured for: session expiry,
// 503 busy and a hook that runs before each call.
type faultKSC struct {
	*kscsim.Server
	clock *kscsim.ManualClock
	busy  atomic.Int32 // answer 503 to this many more calls
	mu    sync.Mutex
	hook  func(method string)
}

func startFaultKSC(t *testing.T, l *sim.Lab, ttl time.Duration) (*faultKSC, sim.Vars) {
	t.Helper()
	f := &faultKSC{clock: kscsim.NewManualClock(time.Now())}
	var err error
	f.Server, err = kscsim.Start(kscsim.Config{
		Username: sim.KSCUsername, Password: l.Config().KSCPassword, CertDir: t.TempDir(),
		RemoveHostsForceIgnored: true, Clock: f.clock, SessionTTL: ttl,
		Busy: func() bool { return f.busy.Add(-1) >= 0 },
		Hook: func(m string) {
			f.mu.Lock()
			h := f.hook
			f.mu.Unlock()
			if h != nil {
				h(m)
			}
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	for _, h := range l.KSC().Hosts() {
		h.GroupID = f.GroupIDGroups()
		h.LastVisible = f.clock.Now()
		f.UpsertHost(h)
	}
	v := l.Vars(l.Dir())
	v.KSCURL, v.KSCCAFile, v.KSCFingerprint = f.URL(), f.CertFile(), f.Fingerprint()
	return f, v
}

func (f *faultKSC) setHook(h func(method string)) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

// onNth returns a hook that runs do once, at the n-th call of method.
func onNth(method string, n int32, do func()) func(string) {
	var seen atomic.Int32
	return func(m string) {
		if m == method && seen.Add(1) == n {
			do()
		}
	}
}

// agentFacts runs agent_facts and returns its hypervisor facts, the part
// that must not depend on how many retries the run needed.
func agentFacts(t *testing.T, ctx context.Context, l *sim.Lab, v sim.Vars, extra map[string]any) (ansible.Result, any) {
	t.Helper()
	res := runModule(t, ctx, l, "agent_facts", factsArgs(v, extra), ansibletest.Mode{})
	return res, ansibletest.Get(res, "ansible_facts", "ksvla", "hypervisors")
}

// KSC faults while agent_facts pages through the records and while
// ksc_purge removes them: a session that expires between pages, a server
// restart between calls and short 503 spells are retried within bounds
// and the facts come out the same; a server that stays busy fails the
// module with a message naming the step.
func TestFaultKSC(t *testing.T) {
	ctx := faultCtx(t)
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 3})
	f, v := startFaultKSC(t, l, time.Minute)
	paged := map[string]any{"page_size": 2}

	base, want := agentFacts(t, ctx, l, v, nil)
	require.False(t, base.Failed(), base.Msg())
	require.NotEmpty(t, want)

	t.Run("session expiry mid-paging", func(t *testing.T) {
		f.ResetCalls()
		// The lab clock jumps past the session's idle timeout between pages.
		f.setHook(onNth("ChunkAccessor.GetItemsChunk", 2, func() { f.clock.Advance(2 * time.Minute) }))
		defer f.setHook(nil)
		res, got := agentFacts(t, ctx, l, v, paged)
		require.False(t, res.Failed(), res.Msg())
		assert.Equal(t, want, got)
		assert.GreaterOrEqual(t, f.Calls()["Session.StartSession"], 2, "logged in again after the session expired")
	})

	// A restart drops every session and accessor.
	t.Run("server restart between runs", func(t *testing.T) {
		require.NoError(t, f.Restart())
		res, got := agentFacts(t, ctx, l, v, paged)
		require.False(t, res.Failed(), res.Msg())
		assert.Equal(t, want, got)
	})

	// The server goes down in the middle of fetching the second page and
	// listens again 300 ms later: the client's first retry (after 0.2 s)
	// meets it down, a later one logs in again and reruns the query.
	for name, at := range map[string]kscsim.CrashPoint{"before": kscsim.CrashBeforeServe, "after": kscsim.CrashAfterServe} {
		t.Run("server restart mid-paging, "+name+" serving the page", func(t *testing.T) {
			f.ResetCalls()
			f.CrashOn("ChunkAccessor.GetItemsChunk", 2, at, 300*time.Millisecond)
			res, got := agentFacts(t, ctx, l, v, paged)
			require.False(t, res.Failed(), res.Msg())
			assert.Equal(t, want, got)
			calls := f.Calls()
			assert.GreaterOrEqual(t, calls["Session.StartSession"], 2, "logged in again after the restart")
			assert.GreaterOrEqual(t, calls["HostGroup.FindHosts"], 2, "the query ran again")
		})
	}

	// A removal cut by a restart is not repeated blindly: ksc_purge asks
	// KSC which records are still there and removes only those, within
	// the same run.
	for name, tc := range map[string]struct {
		at          kscsim.CrashPoint
		removeCalls int // HostGroup.RemoveHosts calls KSC received
	}{
		"before": {at: kscsim.CrashBeforeServe, removeCalls: 2},
		"after":  {at: kscsim.CrashAfterServe, removeCalls: 1},
	} {
		t.Run("ksc_purge restart mid-removal, "+name+" serving it", func(t *testing.T) {
			display := "svm-esxi-08-6.1-" + name
			gone := f.UpsertHost(kscsim.Host{DisplayName: display, IP: "10.9.9.8"})
			args := labtest.Args(kscArgs(v), map[string]any{"names": []any{display}})

			// The cut removal is not repeated blindly: the module asks KSC
			// which records are still there and removes only those.
			f.ResetCalls()
			f.CrashOn("HostGroup.RemoveHosts", 1, tc.at, 300*time.Millisecond)
			res := runModule(t, ctx, l, "ksc_purge", args, ansibletest.Mode{})
			require.False(t, res.Failed(), res.Msg())
			assert.True(t, res.Changed())
			_, ok := f.Host(gone)
			assert.False(t, ok, "removed")
			assert.Equal(t, tc.removeCalls, f.Calls()["HostGroup.RemoveHosts"], "removal calls served")

			res = runModule(t, ctx, l, "ksc_purge", args, ansibletest.Mode{})
			require.False(t, res.Failed(), res.Msg())
			assert.False(t, res.Changed())
		})
	}

	t.Run("503 busy retried", func(t *testing.T) {
		f.busy.Store(3)
		res, got := agentFacts(t, ctx, l, v, paged)
		require.False(t, res.Failed(), res.Msg())
		assert.Equal(t, want, got)
		assert.LessOrEqual(t, f.busy.Load(), int32(0), "the busy answers were consumed")
	})

	t.Run("503 busy for good", func(t *testing.T) {
		f.busy.Store(1 << 20)
		defer f.busy.Store(0)
		res, _ := agentFacts(t, ctx, l, v, nil)
		require.True(t, res.Failed())
		assert.Contains(t, res.Msg(), "server busy (HTTP 503)")
	})

	t.Run("ksc_purge busy then removes", func(t *testing.T) {
		gone := f.UpsertHost(kscsim.Host{DisplayName: "svm-esxi-09-6.1", IP: "10.9.9.9"})
		args := labtest.Args(kscArgs(v), map[string]any{"names": []any{"svm-esxi-09-6.1"}})

		f.busy.Store(1 << 20)
		res := runModule(t, ctx, l, "ksc_purge", args, ansibletest.Mode{})
		f.busy.Store(0)
		require.True(t, res.Failed())
		assert.Contains(t, res.Msg(), "server busy (HTTP 503)")
		_, ok := f.Host(gone)
		require.True(t, ok, "nothing removed while KSC was busy")

		f.busy.Store(2)
		res = runModule(t, ctx, l, "ksc_purge", args, ansibletest.Mode{})
		require.False(t, res.Failed(), res.Msg())
		assert.True(t, res.Changed())
		_, ok = f.Host(gone)
		assert.False(t, ok, "removed once KSC answered")

		res = runModule(t, ctx, l, "ksc_purge", args, ansibletest.Mode{})
		require.False(t, res.Failed(), res.Msg())
		assert.False(t, res.Changed())
	})
}

func klconfigArgs(v sim.Vars, host string, extra map[string]any) map[string]any {
	return labtest.Args(map[string]any{"host": host, "port": v.SVMSSHPort, "password": v.SVMKlconfigPassword,
		"known_hosts": v.SVMKnownHosts, "timeout": 60, "connect_timeout": 2}, extra)
}

// An SVM whose SSH port refuses connections while it boots: svm_klconfig
// waits up to wait_timeout and then configures it; when the SVM stays
// down longer, it fails naming the wait and the address, having sent
// nothing.
func TestFaultSSHRefusedWhileBooting(t *testing.T) {
	ctx := faultCtx(t)
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: 1})
	v := l.Vars(l.Dir())
	name := l.VCenter().Inventory().Hosts[0].OldSVM
	sv := l.SVM(name)
	require.NotNil(t, sv)
	ip := sv.IP()

	require.NoError(t, sv.Stop())
	res := runModule(t, ctx, l, "svm_klconfig", klconfigArgs(v, ip, map[string]any{"timezone": "Europe/Paris", "wait_timeout": 1}), ansibletest.Mode{})
	require.True(t, res.Failed())
	assert.Contains(t, res.Msg(), "svm "+ip+":22 did not answer over SSH within wait_timeout=1s: ")
	assert.Contains(t, res.Msg(), "connection refused")
	assert.NotEqual(t, "Europe/Paris", sv.State().Timezone)

	time.AfterFunc(time.Second, func() { _ = sv.Start() })
	start := time.Now()
	res = runModule(t, ctx, l, "svm_klconfig", klconfigArgs(v, ip, map[string]any{"timezone": "Europe/Paris", "wait_timeout": 20}), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.True(t, res.Changed())
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "it waited for the SVM")
	assert.Equal(t, "Europe/Paris", sv.State().Timezone)
}

// An SSH connection that drops while a klconfig command runs, before or
// after the SVM applied it. A repeatable setter (timezone) is sent again
// and the run succeeds; passwd is not (a second run would log in with a
// credential the first may have changed): the run fails naming the
// command and saying it may have been applied, and the rerun converges.
func TestFaultSSHDroppedMidCommand(t *testing.T) {
	ctx := faultCtx(t)
	l := labtest.Start(t, sim.Config{Hosts: 4, VMsPerHost: -1})
	v := l.Vars(l.Dir())
	const newPassword = "Dropped-Pass1"
	for i, tc := range []struct {
		name    string
		extra   map[string]any
		prefix  string
		at      svm.DropPoint
		applied func(svm.State) bool
		fails   bool // the faulty run fails, as the command cannot be sent again
		runs    int  // times the SVM ran the command in the faulty run
	}{
		{name: "timezone before it ran", extra: map[string]any{"timezone": "Europe/Paris"}, prefix: "timezone",
			at: svm.DropBeforeRun, applied: timezoneIs("Europe/Paris"), runs: 1},
		{name: "timezone after it ran", extra: map[string]any{"timezone": "Europe/Paris"}, prefix: "timezone",
			at: svm.DropAfterRun, applied: timezoneIs("Europe/Paris"), runs: 2},
		{name: "passwd before it ran", extra: map[string]any{"passwords": map[string]any{"klconfig": newPassword}}, prefix: "passwd klconfig",
			at: svm.DropBeforeRun, applied: passwordChanged, fails: true, runs: 0},
		{name: "passwd after it ran", extra: map[string]any{"passwords": map[string]any{"klconfig": newPassword}}, prefix: "passwd klconfig",
			at: svm.DropAfterRun, applied: passwordChanged, fails: true, runs: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sv := l.SVM(l.VCenter().Inventory().Hosts[i].OldSVM)
			require.NotNil(t, sv)
			ip := sv.IP()
			args := klconfigArgs(v, ip, labtest.Args(tc.extra, map[string]any{"record_path": t.TempDir()}))

			sv.DropConnection(tc.prefix, 1, tc.at)
			res := runModule(t, ctx, l, "svm_klconfig", args, ansibletest.Mode{})
			assert.Equal(t, tc.runs, timesRun(sv.State(), tc.prefix), "times the SVM ran %s", tc.prefix)
			assert.Equal(t, tc.runs > 0, tc.applied(sv.State()))
			if tc.fails {
				require.True(t, res.Failed())
				assert.Contains(t, res.Msg(), fmt.Sprintf(`klconfig command %q on %s: the SSH connection dropped while the command ran, so the SVM may or may not have applied it; rerun the task`,
					tc.prefix, net.JoinHostPort(ip, strconv.Itoa(v.SVMSSHPort))))
			} else {
				require.False(t, res.Failed(), res.Msg())
				assert.True(t, res.Changed())
			}

			res = runModule(t, ctx, l, "svm_klconfig", args, ansibletest.Mode{})
			require.False(t, res.Failed(), res.Msg())
			assert.True(t, tc.applied(sv.State()), "the rerun converged")
			res = runModule(t, ctx, l, "svm_klconfig", args, ansibletest.Mode{})
			require.False(t, res.Failed(), res.Msg())
			assert.False(t, res.Changed(), "a third run has nothing to do")
		})
	}
}

func timezoneIs(tz string) func(svm.State) bool {
	return func(s svm.State) bool { return s.Timezone == tz }
}

func passwordChanged(s svm.State) bool { return s.PasswordChanges["klconfig"] == 1 }

// timesRun counts the commands starting with prefix in the SVM's
// results.log, whose command lines follow an RFC 3339 time stamp.
func timesRun(s svm.State, prefix string) int {
	n := 0
	for _, line := range s.ResultsLog {
		stamp, cmd, ok := strings.Cut(line, " ")
		if _, err := time.Parse(time.RFC3339, stamp); ok && err == nil && strings.HasPrefix(cmd, prefix) {
			n++
		}
	}
	return n
}

// The import lease lost during the upload (it expired, or was aborted
// from elsewhere): vCenter answers the keep-alive with a fault. svm_deploy
// stops the upload, fails naming the upload step, aborts the lease and
// deletes the half-imported VM; the rerun deploys exactly one SVM. The
// keep-alive runs every 5 s (vsphere.DefaultLeaseUpdate), so the image is
// served slowly enough for the upload to outlast the first one.
func TestFaultImportLeaseLost(t *testing.T) {
	ctx := faultCtx(t)
	const disk = 8 << 20
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: -1, ImageBytes: disk})
	v := l.Vars(l.Dir())
	s := labtest.VSphere(t, l)
	host := v.ESXiHosts[0]
	name := v.SVMs[host]

	var slow atomic.Bool
	var served atomic.Int64
	url := labtest.ServeImage(t, v.NewImage.Path, func(_ *http.Request, n int) {
		// Past the first MiB (the descriptor's Range reads) the disk is
		// streaming to vCenter: about 1 MB/s from there on.
		if served.Add(int64(n)) > 1<<20 && slow.Load() {
			time.Sleep(time.Duration(n) * time.Microsecond)
		}
	})
	args := deployArgs(v, host, map[string]any{"image": url, "wait_for_ip": false})

	f := l.VCenter().Faults()
	f.AddRule(&simulator.FaultInjectionRule{MethodName: "HttpNfcLeaseProgress", ObjectType: "HttpNfcLease", ObjectName: "*",
		Probability: 1, FaultType: simulator.FaultTypeGeneric, Message: "injected: the lease timed out", Enabled: true})
	slow.Store(true)
	res := runModule(t, ctx, l, "svm_deploy", args, ansibletest.Mode{})
	require.True(t, res.Failed(), "%v", res)
	assert.Regexp(t, `^import vm `+name+`: upload \S+\.vmdk: import lease lost: vCenter refused the keep-alive: `, res.Msg())
	assert.Contains(t, res.Msg(), "injected: the lease timed out")
	assert.True(t, strings.HasSuffix(res.Msg(), "(lease aborted, half-imported vm deleted)"), res.Msg())
	assert.Less(t, served.Load(), int64(disk), "the upload stopped when the lease was lost")
	assert.Empty(t, vmsNamed(t, ctx, s, name), "no half-imported VM")
	assertNoLeftover(t, ctx, s, v, host, name)

	f.ClearRules()
	slow.Store(false)
	res = runModule(t, ctx, l, "svm_deploy", args, ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.True(t, res.Changed())
	require.Len(t, vmsNamed(t, ctx, s, name), 1, "exactly one SVM")
	assertNoLeftover(t, ctx, s, v, host, name)
}
