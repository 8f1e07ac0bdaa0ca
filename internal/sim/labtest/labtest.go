// Package labtest starts labs for module and end-to-end tests and moves
// them through the upgrade by hand (as an admin would, without the modules
// under test), so a test can start from any point of the procedure.
package labtest

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/klconfig"
	"github.com/ksvla/lightagent/internal/ksc"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// claimLoopbackNet picks the lab its own 127.N.0.0/16, so SVMs of labs in
// parallel test processes can all serve klconfig on port 22 as real SVMs
// do. A random N alone collided: two labs on one net, and a module logged
// in to the other lab's SVM at the same address (authentication failed).
// The claim is a listener on 127.N.255.254:22, an address no SVM takes,
// held until the test ends; where port 22 cannot be bound at all (no
// privilege, or a server on *:22) the SVMs fall back to ephemeral ports
// and a random N is enough.
func claimLoopbackNet(t testing.TB) int {
	for range 50 {
		n := 11 + mrand.IntN(240)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.%d.255.254:22", n))
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				continue // another lab's
			}
			return n // port 22 is not ours to bind here
		}
		t.Cleanup(func() { _ = ln.Close() })
		return n
	}
	// Port 22 taken on every net: something listens on *:22, and the SVMs
	// fall back to ephemeral ports as well.
	return 11 + mrand.IntN(240)
}

// Start starts a small, fast lab that is closed when the test ends.
func Start(t testing.TB, cfg sim.Config) *sim.Lab {
	t.Helper()
	if cfg.Hosts == 0 {
		cfg.Hosts = 2
	}
	if cfg.VMsPerHost == 0 {
		cfg.VMsPerHost = 2
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.LoopbackNet == 0 {
		cfg.LoopbackNet = claimLoopbackNet(t)
	}
	if cfg.ImageBytes == 0 {
		cfg.ImageBytes = 64 << 10
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 20 * time.Millisecond
	}
	if cfg.NetworkRestartDelay == 0 {
		cfg.NetworkRestartDelay = 50 * time.Millisecond
	}
	if cfg.AgentUpdateDuration == 0 {
		cfg.AgentUpdateDuration = 200 * time.Millisecond
	}
	l, err := sim.Start(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(l.Close)
	require.NoError(t, l.WriteFiles(l.Dir()))
	return l
}

// VSphere logs in to the lab's vCenter with our client, verifying its
// certificate against the lab's CA file.
func VSphere(t testing.TB, l *sim.Lab) *vsphere.Session {
	t.Helper()
	v := l.Vars(l.Dir())
	s, err := vsphere.Connect(context.Background(), vsphere.Conn{
		Hostname: v.VCenterHostname, Port: v.VCenterPort, Username: v.VCenterUsername, Password: v.VCenterPassword,
		ValidateCerts: true, CAFile: v.VCenterCAFile,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Logout(context.Background()) })
	return s
}

// KSC returns a client of the lab's KSC, pinned to its certificate.
func KSC(t testing.TB, l *sim.Lab) *ksc.Client {
	t.Helper()
	v := l.Vars(l.Dir())
	c, err := ksc.New(ksc.Config{URL: v.KSCURL, Username: v.KSCUsername, Password: v.KSCPassword, Internal: true,
		CAFile: v.KSCCAFile, ValidateCerts: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// NewSVMName is the name tests give the new SVM of an ESXi host.
func NewSVMName(l *sim.Lab, host string) string {
	if n := l.Vars(l.Dir()).SVMs[host]; n != "" {
		return n
	}
	return "svm-" + strings.Split(host, ".")[0] + "-new"
}

// DeployNewSVM imports the lab's new image onto host, powers it on, waits
// for its IP and connects it to KSC with nagent over SSH: step 1 and 2 of
// the procedure done by hand.
func DeployNewSVM(t testing.TB, l *sim.Lab, s *vsphere.Session, host string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v := l.Vars(l.Dir())
	name := NewSVMName(l, host)
	res, err := s.Import(ctx, vsphere.ImportSpec{
		Source: v.NewImage.Path, Name: name, Datacenter: v.Datacenter, Host: host,
		Datastore: v.LocalDatastores[host],
	})
	require.NoError(t, err)
	require.NoError(t, s.SetMarks(ctx, res.VM, map[string]string{
		vsphere.MarkRole: vsphere.RoleSVM, vsphere.MarkVersion: v.NewVersion,
		vsphere.MarkImageSHA256: v.NewImage.SHA256, vsphere.MarkDeployedBy: vsphere.DeployedBy,
		vsphere.MarkHost: host,
	}))
	require.NoError(t, s.PowerOn(ctx, res.VM))
	ip, err := s.WaitForIP(ctx, res.VM, 30*time.Second)
	require.NoError(t, err)
	require.NoError(t, l.WriteFiles(l.Dir()))
	addr := ip
	if sv := l.SVM(name); sv != nil {
		addr = sv.Addr()
	}
	nagent, err := klconfig.Nagent(v.KSCNagentAddress, v.KSCNagentSSLPort, v.KSCNagentPort)
	require.NoError(t, err)
	// A new SVM is a stranger: the admin reads its host key on the VM's console (the lab's view
	// of it here) and logs in with the image's password.
	sv := l.SVM(name)
	require.NotNil(t, sv, "the lab runs %s", name)
	klconfigPinned(t, addr, v.SVMImagePassword, ssh.FingerprintSHA256(sv.HostKey()), nagent)
	require.NoError(t, l.Sync(ctx))
	return name
}

// Klconfig runs one command on an old (seeded) SVM over SSH with the
// lab's password and known_hosts.
func Klconfig(t testing.TB, l *sim.Lab, addr string, cmd klconfig.Command) klconfig.Result {
	t.Helper()
	v := l.Vars(l.Dir())
	return klconfigRun(t, addr, klconfig.SSHConfig{Addr: addr, Password: v.SVMKlconfigPassword,
		HostKey: klconfig.HostKeyStrict, KnownHostsFile: v.SVMKnownHosts}, cmd)
}

// klconfigPinned runs one command with password, accepting only the host
// key fingerprint.
func klconfigPinned(t testing.TB, addr, password, fingerprint string, cmd klconfig.Command) klconfig.Result {
	t.Helper()
	return klconfigRun(t, addr, klconfig.SSHConfig{Addr: addr, Password: password,
		HostKey: klconfig.HostKeyStrict, Fingerprint: fingerprint}, cmd)
}

func klconfigRun(t testing.TB, addr string, cfg klconfig.SSHConfig, cmd klconfig.Command) klconfig.Result {
	t.Helper()
	r, err := klconfig.NewSSHRunner(cfg)
	require.NoError(t, err)
	res, err := klconfig.New(klconfig.Retry{Runner: r, MaxWait: 10 * time.Second}).Do(context.Background(), cmd)
	require.NoError(t, err, fmt.Sprintf("klconfig %s on %s", cmd, addr))
	return res
}

// UpdateAgents prepares the connected SVMs (PrepareSVMs: an agent
// connects only to an activated SVM) then runs the lab's KSC task that
// updates the Light Agents, as the vendor's steps 4 and 5 do, and waits
// until it finishes.
func UpdateAgents(t testing.TB, l *sim.Lab) {
	t.Helper()
	PrepareSVMs(t, l)
	RunTask(t, l, l.Vars(l.Dir()).UpdateAgentsTask)
}

// PrepareSVMs runs the activation and database update tasks: every SVM
// connected to KSC is then activated and has databases.
func PrepareSVMs(t testing.TB, l *sim.Lab) {
	t.Helper()
	RunTask(t, l, sim.ActivateTask)
	RunTask(t, l, sim.UpdateDatabasesTask)
}

// RunTask starts the lab's KSC task of that name over the API and waits
// until it finishes (successful or not).
func RunTask(t testing.TB, l *sim.Lab, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := KSC(t, l)
	id, err := c.FindTask(ctx, name)
	require.NoError(t, err)
	require.NoError(t, c.RunTask(ctx, id))
	for {
		st, err := c.TaskState(ctx, id)
		require.NoError(t, err)
		if st.Done() {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("task %q did not finish: %v", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.NoError(t, l.Sync(ctx))
}

// FleetArgs are the options that tell agent_facts and svm_remove the
// lab's products and compatibility table (the lab's, not the defaults).
func FleetArgs(v sim.Vars) map[string]any {
	la := make([]any, len(v.LAProductKeys))
	for i, k := range v.LAProductKeys {
		la[i] = k
	}
	return map[string]any{"ps_products": []any{v.PSProductKey}, "la_products": la, "compatibility": CompatArg(v.Compatibility)}
}

// CompatArg is a compatibility table as a module option (JSON shape).
func CompatArg(c map[string]map[string][]string) map[string]any {
	out := map[string]any{}
	for ps, products := range c {
		m := map[string]any{}
		for p, versions := range products {
			vs := make([]any, len(versions))
			for i, v := range versions {
				vs[i] = v
			}
			m[p] = vs
		}
		out[ps] = m
	}
	return out
}

// VCenterArgs are the lab's vCenter connection options as a module takes
// them, the certificate verified (the default) against the lab's CA file.
func VCenterArgs(v sim.Vars) map[string]any {
	return map[string]any{"hostname": v.VCenterHostname, "port": v.VCenterPort, "username": v.VCenterUsername,
		"password": v.VCenterPassword, "ca_file": v.VCenterCAFile}
}

// KSCArgs are the lab's KSC connection options, pinned to its certificate.
func KSCArgs(v sim.Vars) map[string]any {
	return map[string]any{"ksc_url": v.KSCURL, "ksc_username": v.KSCUsername, "ksc_password": v.KSCPassword,
		"ksc_ca_file": v.KSCCAFile}
}

// Args merges option maps, later ones winning; a nil value drops the
// key (a test leaving an option out).
func Args(maps ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range maps {
		for k, v := range m {
			if v == nil {
				delete(out, k)
				continue
			}
			out[k] = v
		}
	}
	return out
}

// FleetModuleArgs are the options agent_facts and svm_remove read the
// lab's fleet with: its vCenter and KSC, products and table, datacenter,
// and its new version as the target.
func FleetModuleArgs(v sim.Vars) map[string]any {
	return Args(VCenterArgs(v), KSCArgs(v), FleetArgs(v), map[string]any{"datacenter": v.Datacenter, "target_version": v.NewVersion})
}
