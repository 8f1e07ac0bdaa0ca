package svmdeploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// env is one lab with a session of our own to look at it.
type env struct {
	l *sim.Lab
	v sim.Vars
	s *vsphere.Session
}

func newEnv(t testing.TB, cfg sim.Config) env {
	t.Helper()
	l := labtest.Start(t, cfg)
	return env{l: l, v: l.Vars(l.Dir()), s: labtest.VSphere(t, l)}
}

// args are the options of a deploy of the new image onto host.
func (e env) args(host, name string, extra map[string]any) map[string]any {
	a := map[string]any{
		"hostname": e.v.VCenterHostname, "port": e.v.VCenterPort, "username": e.v.VCenterUsername,
		"password": e.v.VCenterPassword, "ca_file": e.v.VCenterCAFile,
		"datacenter": e.v.Datacenter, "esxi_hostname": host, "datastore": e.v.LocalDatastores[host],
		"name": name, "image": e.v.NewImage.Path, "wait_timeout": 30, "timeout": 120,
	}
	return labtest.Args(a, extra)
}

func (e env) run(t testing.TB, ctx context.Context, args map[string]any, mode ansibletest.Mode) ansible.Result {
	t.Helper()
	mode.Diff = true
	res := ansibletest.Run(t, ctx, "svm_deploy", New(), args, mode)
	raw, err := json.Marshal(res)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), e.v.VCenterPassword, "the password must never appear in the result")
	return res
}

// vms returns the VMs named name, as vCenter sees them.
func (e env) vms(t testing.TB, name string) []vsphere.VM {
	t.Helper()
	all, err := e.s.Inventory(context.Background(), vsphere.Scope{Datacenter: e.v.Datacenter, Details: true})
	require.NoError(t, err)
	var out []vsphere.VM
	for _, vm := range all {
		if vm.Name == name {
			out = append(out, vm)
		}
	}
	return out
}

// noLeftover asserts no half-imported VM and no orphan folder of name.
func (e env) noLeftover(t testing.TB, host, name string) {
	t.Helper()
	ctx := context.Background()
	ds, err := e.s.Datastore(ctx, nil, e.v.LocalDatastores[host])
	require.NoError(t, err)
	lo, err := e.s.FindLeftover(ctx, nil, name, ds)
	require.NoError(t, err)
	assert.Nil(t, lo, "nothing may be left behind")
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func imageSHA(t testing.TB, path string) string {
	t.Helper()
	d, err := vsphere.ReadDescriptor(context.Background(), path)
	require.NoError(t, err)
	return d.ImageSHA256
}

func TestDeployLifecycle(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 2, VMsPerHost: 1})
	ctx := ctxFor(t)
	host := e.v.ESXiHosts[0]
	name := e.v.SVMs[host]
	args := e.args(host, name, map[string]any{"first_boot": []any{"timezone  Europe/Berlin", "REPORT"}})
	want := map[string]any{
		"name": name, "host": host, "datastore": e.v.LocalDatastores[host], "version": e.v.NewVersion,
		"power_state": "poweredOn", "first_boot": []any{"timezone Europe/Berlin", "REPORT"},
		// The lab's cluster runs HA: no autostart entry.
		"pin": map[string]any{"drs_automation_disabled": true, "ha_restart_disabled": true},
	}

	check := e.run(t, ctx, args, ansibletest.Mode{Check: true})
	require.False(t, check.Failed(), check.Msg())
	assert.True(t, check.Changed())
	assert.Equal(t, []any{"import", "set marks", "set first boot", "pin to host", "power on", "wait for IP"}, check["plan"])
	assert.Equal(t, map[string]any{"before": map[string]any{}, "after": want}, check["diff"])
	assert.Equal(t, "SVM "+name+" on "+host+": would import, set marks, set first boot, pin to host, power on, wait for IP", check.Msg())
	assert.Empty(t, e.vms(t, name), "check mode must create nothing")

	first := e.run(t, ctx, args, ansibletest.Mode{})
	require.False(t, first.Failed(), first.Msg())
	assert.True(t, first.Changed())
	assert.Equal(t, map[string]any{"before": map[string]any{}, "after": want}, first["diff"])
	vms := e.vms(t, name)
	require.Len(t, vms, 1)
	vm := vms[0]
	assert.Equal(t, "poweredOn", vm.PowerState)
	assert.NotEmpty(t, vm.IP)
	assert.Equal(t, host, vm.Host)
	marks := map[string]string{
		vsphere.MarkRole: vsphere.RoleSVM, vsphere.MarkVersion: e.v.NewVersion,
		vsphere.MarkImageSHA256: imageSHA(t, e.v.NewImage.Path), vsphere.MarkDeployedBy: vsphere.DeployedBy,
		vsphere.MarkFirstContact: vsphere.FirstContactPending, vsphere.MarkHost: host,
	}
	assert.Equal(t, marks, vm.Marks)
	assert.Equal(t, map[string]string{"guestinfo.klfirstboot.cmd1": "timezone Europe/Berlin", "guestinfo.klfirstboot.cmd2": "REPORT"}, vm.FirstBoot)
	assert.False(t, vm.ImportIncomplete)
	assert.Equal(t, map[string]any{
		"name": name, "moid": vm.Moid, "instance_uuid": vm.InstanceUUID, "host": host, "datastore": e.v.LocalDatastores[host],
		"power_state": "poweredOn", "ip": vm.IP, "version": e.v.NewVersion, "marks": toAny(marks),
	}, first["svm"])
	assert.Equal(t, fmt.Sprintf("SVM %s (version %s) deployed on %s, poweredOn, IP %s", name, e.v.NewVersion, host, vm.IP), first.Msg())
	up, _ := first["upload"].(map[string]any)
	require.NotNil(t, up, "the upload is reported")
	assert.Positive(t, up["bytes"])
	assert.Contains(t, up, "seconds")
	assert.Contains(t, up, "mib_per_s")

	// The first-boot commands ran at power-on in the SVM.
	require.NotNil(t, e.l.SVM(name))
	st := e.l.SVM(name).State()
	assert.Equal(t, "Europe/Berlin", st.Timezone)
	assert.True(t, st.BootConfigDone)
	assert.True(t, containsLine(st.BootConfigLog, "cmd1: timezone Europe/Berlin: KLCONFIG OK"), st.BootConfigLog)

	again := e.run(t, ctx, args, ansibletest.Mode{})
	require.False(t, again.Failed(), again.Msg())
	assert.False(t, again.Changed())
	assert.Equal(t, []any{}, again["plan"])
	assert.Nil(t, again["upload"])
	assert.Equal(t, vm.Moid, ansibletest.Get(again, "svm", "moid"))
	assert.Equal(t, vm.IP, ansibletest.Get(again, "svm", "ip"))
	assert.Equal(t, fmt.Sprintf("SVM %s (version %s) exists on %s: nothing to do", name, e.v.NewVersion, host), again.Msg())
	assert.Nil(t, again["warnings"])

	// Other first-boot commands for an existing SVM: left as is, with a warning.
	drift := e.run(t, ctx, e.args(host, name, map[string]any{"first_boot": []any{"timezone UTC"}}), ansibletest.Mode{})
	require.False(t, drift.Failed(), drift.Msg())
	assert.False(t, drift.Changed())
	assert.Equal(t, []any{"SVM " + name + " exists: first_boot only applies when it is created, and its first-boot commands differ; left as is"}, drift["warnings"])

	// state=absent: check, remove, again.
	absent := labtest.Args(e.args(host, name, map[string]any{"state": "absent", "image": nil, "datastore": nil}), labtest.KSCArgs(e.v), labtest.FleetArgs(e.v))
	checkAbsent := e.run(t, ctx, absent, ansibletest.Mode{Check: true})
	require.False(t, checkAbsent.Failed(), checkAbsent.Msg())
	assert.True(t, checkAbsent.Changed())
	assert.Equal(t, map[string]any{"before": want, "after": map[string]any{}}, checkAbsent["diff"])
	assert.Len(t, e.vms(t, name), 1, "check mode must delete nothing")

	removed := e.run(t, ctx, absent, ansibletest.Mode{})
	require.False(t, removed.Failed(), removed.Msg())
	assert.True(t, removed.Changed())
	assert.Equal(t, "SVM "+name+" removed from "+host, removed.Msg())
	assert.NotContains(t, removed, "svm", "nothing to return about a deleted SVM")
	assert.Empty(t, e.vms(t, name))
	e.noLeftover(t, host, name)

	gone := e.run(t, ctx, absent, ansibletest.Mode{})
	require.False(t, gone.Failed(), gone.Msg())
	assert.False(t, gone.Changed())
	assert.Equal(t, "no VM named "+name+": nothing to remove", gone.Msg())
}

// state=absent goes through svm_remove's gates: the only SVM serving a
// host's agents is refused with svm_remove's message, in check mode and
// for real, and the lab records no gap; without KSC it is refused unless
// forced, and force is reported.
func TestAbsentGated(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: 2})
	ctx := ctxFor(t)
	host := e.v.ESXiHosts[0]
	old := e.l.VCenter().Inventory().Hosts[0].OldSVM
	args := labtest.Args(e.args(host, old, map[string]any{"state": "absent", "image": nil, "datastore": nil}), labtest.KSCArgs(e.v), labtest.FleetArgs(e.v))
	want := "refusing to remove any SVM: 1 selected SVM(s) blocked by safety gates: " + old + " on " + host + " (6.1.0.100): " +
		"no_agent_needs_it: 2 Light Agent(s) on " + host + " still need it: vm-esxi-01-001 (KES 12.5.0.100), vm-esxi-01-002 (kesl 12.1.0.300); " +
		"not_last_svm: " + old + " is the last SVM on " + host
	for _, check := range []bool{true, false} {
		res := e.run(t, ctx, args, ansibletest.Mode{Check: check})
		require.True(t, res.Failed())
		assert.Equal(t, want, res.Msg())
		assert.Equal(t, false, ansibletest.Get(res, "gates", 0, "passed"))
	}
	noKSC := e.run(t, ctx, e.args(host, old, map[string]any{"state": "absent", "image": nil, "datastore": nil}), ansibletest.Mode{})
	require.True(t, noKSC.Failed())
	assert.Contains(t, noKSC.Msg(), "the Light Agent gate needs KSC")
	forced := e.run(t, ctx, labtest.Args(args, map[string]any{"force": true}), ansibletest.Mode{Check: true})
	require.True(t, forced.Failed(), "force skips the agent gate only: the last-SVM gate still holds")
	assert.Contains(t, forced.Msg(), "not_last_svm: "+old+" is the last SVM on "+host)
	assert.Contains(t, fmt.Sprint(forced["warnings"]), "force=true: the Light Agent and unknown-VM gates are skipped")
	assert.Len(t, e.vms(t, old), 1)
	require.NoError(t, e.l.Sync(ctx))
	assert.Empty(t, e.l.Gaps())
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func containsLine(lines []string, part string) bool {
	for _, l := range lines {
		if strings.Contains(l, part) {
			return true
		}
	}
	return false
}

// A powered-off SVM of the right version is powered on: a change, once.
func TestPowerOnExisting(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	ctx := ctxFor(t)
	host := e.v.ESXiHosts[0]
	name := "svm-off"

	off := e.run(t, ctx, e.args(host, name, map[string]any{"power_on": false}), ansibletest.Mode{})
	require.False(t, off.Failed(), off.Msg())
	assert.True(t, off.Changed())
	assert.Equal(t, []any{"import", "set marks", "pin to host"}, off["plan"])
	assert.Equal(t, "poweredOff", ansibletest.Get(off, "svm", "power_state"))
	assert.Equal(t, "", ansibletest.Get(off, "svm", "ip"))

	steps := []struct {
		check, changed bool
		plan           []any
	}{{true, true, []any{"power on", "wait for IP"}}, {false, true, []any{"power on", "wait for IP"}}, {false, false, []any{}}}
	for i, st := range steps {
		res := e.run(t, ctx, e.args(host, name, nil), ansibletest.Mode{Check: st.check})
		require.False(t, res.Failed(), "run %d: %s", i, res.Msg())
		assert.Equal(t, st.changed, res.Changed(), "run %d", i)
		assert.Equal(t, st.plan, res["plan"], "run %d", i)
		if st.changed {
			before, _ := ansibletest.Get(res, "diff", "before", "power_state").(string)
			assert.Equal(t, "poweredOff", before)
			assert.Equal(t, "poweredOn", ansibletest.Get(res, "diff", "after", "power_state"))
		}
	}
	vms := e.vms(t, name)
	require.Len(t, vms, 1)
	assert.Equal(t, "poweredOn", vms[0].PowerState)
	assert.NotEmpty(t, vms[0].IP)
}

// A VM this module imported whose run stopped before the marks were
// written is still recognised (extraConfig ksvla.deploy.version): the
// rerun marks and powers it on instead of refusing it.
func TestMarksMissingAfterImport(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	ctx := ctxFor(t)
	host := e.v.ESXiHosts[0]
	name := "svm-unmarked"
	res := e.run(t, ctx, e.args(host, name, map[string]any{"power_on": false}), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	vm, err := e.s.VM(ctx, nil, name)
	require.NoError(t, err)
	unset := map[string]string{}
	for _, m := range append(vsphere.Marks, vsphere.MarkFirstContact) {
		unset[m] = ""
	}
	require.NoError(t, e.s.SetMarks(ctx, vm, unset))
	require.Empty(t, e.vms(t, name)[0].Marks)

	res = e.run(t, ctx, e.args(host, name, nil), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.True(t, res.Changed())
	assert.Equal(t, []any{"set marks", "power on", "wait for IP"}, res["plan"])
	assert.Equal(t, fmt.Sprintf("SVM %s (version %s) completed on %s, poweredOn, IP %s", name, e.v.NewVersion, host,
		ansibletest.Get(res, "svm", "ip")), res.Msg())
	vms := e.vms(t, name)
	require.Len(t, vms, 1)
	assert.Equal(t, vsphere.RoleSVM, vms[0].Marks[vsphere.MarkRole])
	assert.Equal(t, e.v.NewVersion, vms[0].Marks[vsphere.MarkVersion])
	assert.Equal(t, "poweredOn", vms[0].PowerState)
}

// Every refusal fails with its message, in check mode too, and changes
// nothing.
func TestRefusals(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 2, VMsPerHost: 1})
	ctx := ctxFor(t)
	h0, h1 := e.v.ESXiHosts[0], e.v.ESXiHosts[1]
	inv := e.l.VCenter().Inventory()
	protected := inv.Hosts[0].ProtectedVMs[0]
	oldSVM := inv.Hosts[0].OldSVM

	// An SVM of the new version on h1, for the clash cases.
	svm := e.v.SVMs[h1]
	res := e.run(t, ctx, e.args(h1, svm, nil), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())

	badTP := strings.Repeat("AB:", 19) + "AB"
	cases := []struct {
		name string
		args map[string]any
		msg  string // exact, or a prefix ending in "…"
	}{
		{"version mismatch", e.args(h0, "svm-x", map[string]any{"version": "9.9"}),
			fmt.Sprintf("image %s carries Protection Server version %s, but option version is 9.9", e.v.NewImage.Path, e.v.NewVersion)},
		{"version not a version", e.args(h0, "svm-x", map[string]any{"version": "latest"}),
			`version must be a version of two to four dotted numbers such as 6.2.0.200, got "latest"`},
		{"not an SVM", e.args(h0, protected, nil),
			fmt.Sprintf("VM %s (/%s/vm/%s) exists and is not an SVM marked by ksvla.lightagent (custom attribute ksvla.role: not set): refusing to overwrite it; choose another name",
				protected, e.v.Datacenter, protected)},
		{"absent on a VM that is not an SVM", e.args(h0, protected, map[string]any{"state": "absent"}),
			fmt.Sprintf("VM %s (/%s/vm/%s) exists and is not an SVM marked by ksvla.lightagent (custom attribute ksvla.role: not set): refusing to delete it; choose another name",
				protected, e.v.Datacenter, protected)},
		{"SVM on another host", e.args(h0, svm, nil),
			fmt.Sprintf("SVM %s exists on host %s, not on %s: refusing to touch it (an SVM is pinned to its host; choose another name or set esxi_hostname to %s)", svm, h1, h0, h1)},
		{"same name, another version", e.args(h0, oldSVM, nil),
			fmt.Sprintf("SVM %s on %s is version %s, not %s: refusing to overwrite it; remove it first (state: absent) or choose another name", oldSVM, h0, e.v.OldVersion, e.v.NewVersion)},
		{"absent with another version", e.args(h0, oldSVM, map[string]any{"state": "absent", "version": "6.0.0.1"}),
			fmt.Sprintf("SVM %s on %s is version %s, not 6.0.0.1 as option version says: refusing to delete it", oldSVM, h0, e.v.OldVersion)},
		{"passwd in first_boot", e.args(h0, "svm-x", map[string]any{"first_boot": []any{"timezone UTC", "passwd klconfig"}}),
			"first_boot command 2 (passwd) is refused: passwd reads the new password from standard input, which halts the SVM's first boot (vendor); set passwords with ksvla.lightagent.svm_klconfig after deployment"},
		{"quote in first_boot", e.args(h0, "svm-x", map[string]any{"first_boot": []any{`dns "1.1.1.1"`}}),
			`first_boot command 1: klconfig dns argument 1: argument "\"1.1.1.1\"" holds a character that is not allowed (whitespace, quotes, ';' and shell characters are refused)`},
		{"semicolon in first_boot", e.args(h0, "svm-x", map[string]any{"first_boot": []any{"timezone UTC;reboot"}}),
			`first_boot command 1: klconfig timezone argument 1: argument "UTC;reboot" holds a character that is not allowed (whitespace, quotes, ';' and shell characters are refused)`},
		{"line break in first_boot", e.args(h0, "svm-x", map[string]any{"first_boot": []any{"timezone UTC\nreboot"}}),
			"first_boot command 1: klconfig: command line holds a line break: give one command per line"},
		{"unknown OVF network", e.args(h0, "svm-x", map[string]any{"networks": map[string]any{"Nope": e.v.SVMNetwork}}),
			`networks: the image has no network "Nope" (it has: VM Network)`},
		{"missing datastore", e.args(h0, "svm-x", map[string]any{"datastore": "nope"}),
			fmt.Sprintf(`datastore "nope" not found in datacenter /%s; datastores there: %s, `, e.v.Datacenter, e.v.LocalDatastores[h0]) + "…"},
		{"image required", e.args(h0, "svm-x", map[string]any{"image": nil}),
			"state is present but all of the following are missing: image"},
		{"wrong thumbprint", e.args(h0, "svm-x", map[string]any{"thumbprint": badTP}),
			fmt.Sprintf("connect to %s:%d: …", e.v.VCenterHostname, e.v.VCenterPort)},
	}
	before := e.snapshot(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.refused(t, ctx, c.args, c.msg)
		})
	}
	res = e.run(t, ctx, e.args(h0, "svm-x", map[string]any{"thumbprint": badTP}), ansibletest.Mode{})
	assert.Contains(t, res.Msg(), "does not match option thumbprint")
	assert.Equal(t, before, e.snapshot(t), "refused runs must change nothing")
}

// snapshot is every VM's name, host, power state and marks.
func (e env) snapshot(t testing.TB) []string {
	t.Helper()
	all, err := e.s.Inventory(context.Background(), vsphere.Scope{Datacenter: e.v.Datacenter})
	require.NoError(t, err)
	var out []string
	for _, vm := range all {
		out = append(out, fmt.Sprintf("%s %s %s %s %v", vm.Name, vm.Moid, vm.Host, vm.PowerState, vm.Marks))
	}
	return out
}

// A run cancelled mid-upload aborts the import and deletes the VM it had
// created; the rerun deploys the SVM once. The image is served over HTTP
// (a real server on loopback) so the test knows when the disk streams.
func TestCancelledMidUpload(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1, ImageBytes: 8 << 20})
	host := e.v.ESXiHosts[0]
	name := e.v.SVMs[host]

	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	var served atomic.Int64
	// Reading the descriptor takes a few KiB of Range requests; past 1 MiB
	// the disk is streaming to vCenter.
	const midUpload = 1 << 20
	url := labtest.ServeImage(t, e.v.NewImage.Path, func(_ *http.Request, n int) {
		if served.Add(int64(n)) > midUpload {
			cancel()
		}
	})
	args := e.args(host, name, map[string]any{"image": url, "wait_for_ip": false})

	res := e.run(t, ctx, args, ansibletest.Mode{})
	require.True(t, res.Failed())
	assert.Greater(t, served.Load(), int64(midUpload), "cancelled during the upload")
	assert.Less(t, served.Load(), int64(8<<20), "the upload stopped when cancelled")
	assert.True(t, strings.HasPrefix(res.Msg(), "import vm "+name+": upload "), res.Msg())
	assert.Contains(t, res.Msg(), "context canceled")
	assert.True(t, strings.HasSuffix(res.Msg(), "(lease aborted, half-imported vm deleted)"), res.Msg())
	assert.Empty(t, e.vms(t, name), "no half-imported VM")
	e.noLeftover(t, host, name)

	again := e.run(t, ctxFor(t), args, ansibletest.Mode{})
	require.False(t, again.Failed(), again.Msg())
	assert.True(t, again.Changed())
	assert.Len(t, e.vms(t, name), 1)
	assert.EqualValues(t, ansibletest.Get(again, "upload", "bytes"), imageDiskBytes(t, url))
}

func imageDiskBytes(t testing.TB, src string) int64 {
	t.Helper()
	d, err := vsphere.ReadDescriptor(context.Background(), src)
	require.NoError(t, err)
	return d.DiskBytes
}

// The timeout option bounds the whole module: when it runs out during
// the import, the import is aborted, nothing is left, and the message
// names the option.
func TestTimeoutOption(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1, ImageBytes: 4 << 20})
	host := e.v.ESXiHosts[0]
	name := e.v.SVMs[host]
	// The image server stalls once the disk streams, the first time only,
	// until the client gives up: the upload outlasts the 1 s the module is
	// given.
	var served atomic.Int64
	var stalled atomic.Bool
	url := labtest.ServeImage(t, e.v.NewImage.Path, func(r *http.Request, n int) {
		if served.Add(int64(n)) > 1<<20 && stalled.CompareAndSwap(false, true) {
			<-r.Context().Done()
		}
	})
	args := e.args(host, name, map[string]any{"image": url, "timeout": 1})
	res := e.run(t, ctxFor(t), args, ansibletest.Mode{})
	require.True(t, res.Failed())
	require.True(t, stalled.Load(), "the deadline must have come during the upload: %s", res.Msg())
	assert.True(t, strings.HasPrefix(res.Msg(), "import vm "+name+": "), res.Msg())
	assert.True(t, strings.HasSuffix(res.Msg(), "(lease aborted, half-imported vm deleted) (the module ran out of time: option timeout is 1 s)"), res.Msg())
	assert.Empty(t, e.vms(t, name))
	e.noLeftover(t, host, name)

	again := e.run(t, ctxFor(t), args, ansibletest.Mode{})
	require.False(t, again.Failed(), again.Msg())
	assert.True(t, again.Changed())
	assert.Len(t, e.vms(t, name), 1)
}

// A VM an interrupted (killed) run left half-imported is removed and the
// deployment redone, with a warning.
func TestLeftoverFromKilledRun(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	ctx := ctxFor(t)
	host := e.v.ESXiHosts[0]
	name := e.v.SVMs[host]
	left := labtest.HalfImportedVM(t, e.s, e.v.Datacenter, host, e.v.LocalDatastores[host], name)

	args := e.args(host, name, nil)
	check := e.run(t, ctx, args, ansibletest.Mode{Check: true})
	require.False(t, check.Failed(), check.Msg())
	assert.Equal(t, []any{"cleanup leftover", "import", "set marks", "pin to host", "power on", "wait for IP"}, check["plan"])
	require.Len(t, e.vms(t, name), 1, "check mode removes nothing")

	res := e.run(t, ctx, args, ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.True(t, res.Changed())
	path := "/" + e.v.Datacenter + "/vm/" + name
	assert.Equal(t, map[string]any{"vms": []any{path}, "removed": true}, res["leftover"])
	assert.Equal(t, []any{"removed " + path + ": half-created by an interrupted run (its import never completed)"}, res["warnings"])
	vms := e.vms(t, name)
	require.Len(t, vms, 1, "no duplicate")
	assert.NotEqual(t, left, vms[0].Moid, "the leftover is gone, a new VM deployed")
	assert.False(t, vms[0].ImportIncomplete)
	assert.Equal(t, vsphere.RoleSVM, vms[0].Marks[vsphere.MarkRole])
	e.noLeftover(t, host, name)

	again := e.run(t, ctx, args, ansibletest.Mode{})
	require.False(t, again.Failed(), again.Msg())
	assert.False(t, again.Changed())
}

// An image URL with image_sha256 is downloaded once in a real run: the
// upload's own check finds a wrong checksum, aborts the lease and leaves
// nothing; check mode reads the image beforehand to say so without a
// change.
func TestImageURLWrongSHA256ReadOnce(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1, ImageBytes: 4 << 20})
	host := e.v.ESXiHosts[0]
	name := e.v.SVMs[host]
	var served atomic.Int64
	url := labtest.ServeImage(t, e.v.NewImage.Path, func(_ *http.Request, n int) { served.Add(int64(n)) })
	wrong := strings.Repeat("0", 64)
	size := fileSize(t, e.v.NewImage.Path)

	res := e.run(t, ctxFor(t), e.args(host, name, map[string]any{"image": url, "image_sha256": wrong}), ansibletest.Mode{Check: true})
	require.True(t, res.Failed())
	assert.True(t, strings.HasPrefix(res.Msg(), "image_sha256: "), res.Msg())

	served.Store(0)
	res = e.run(t, ctxFor(t), e.args(host, name, map[string]any{"image": url, "image_sha256": wrong}), ansibletest.Mode{})
	require.True(t, res.Failed())
	assert.Contains(t, res.Msg(), "does not match the expected "+wrong, res.Msg())
	assert.LessOrEqual(t, served.Load(), size+size/10, "the image was read more than once in a real run")
	assert.Empty(t, e.vms(t, name))
	e.noLeftover(t, host, name)
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}
