package kscpurge

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/internal/sim/svm"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// startLab starts a one-host lab without protected VMs.
func startLab(t *testing.T, ctx context.Context, secondDatacenter bool) *sim.Lab {
	t.Helper()
	l, err := sim.Start(ctx, sim.Config{Hosts: 1, VMsPerHost: -1, SecondDatacenter: secondDatacenter, Dir: t.TempDir(),
		SSHPort: svm.EphemeralPort, ImageBytes: 4096, HeartbeatInterval: 20 * time.Millisecond, Logf: t.Logf})
	require.NoError(t, err)
	t.Cleanup(l.Close)
	return l
}

// A record whose SVM still runs in vCenter is refused, in check mode and
// for real, and nothing of the selection is removed; once the VM is
// powered off the same purge goes through.
func TestRefusesRunningSVM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := startLab(t, ctx, false)
	v := l.Vars(l.Dir())
	k := l.KSC()
	const running = "svm-esxi-01-6.1"
	require.Len(t, k.FindByName(running), 1)
	gone := k.UpsertHost(kscsim.Host{DisplayName: "svm-esxi-09-6.1", IP: "10.9.9.9"})

	kscArgs := map[string]any{"ksc_url": v.KSCURL, "ksc_username": v.KSCUsername, "ksc_password": v.KSCPassword,
		"ksc_fingerprint": v.KSCFingerprint, "names": []any{running, "svm-esxi-09-6.1"}}
	vcEnv := map[string]string{"VMWARE_HOST": v.VCenterHostname, "VMWARE_PORT": strconv.Itoa(v.VCenterPort),
		"VMWARE_USER": v.VCenterUsername, "VMWARE_PASSWORD": v.VCenterPassword, "VMWARE_CA_FILE": v.VCenterCAFile}
	want := "refusing to remove the KSC records of VMs that still run in vCenter (svm-esxi-01-6.1: VM svm-esxi-01-6.1 is powered on in vCenter (on esxi-01.lab.local)); nothing was removed"
	for _, check := range []bool{true, false} {
		res := ansibletest.Run(t, ctx, "ksc_purge", New(), kscArgs, ansibletest.Mode{Check: check, Env: vcEnv})
		assert.True(t, res.Failed())
		assert.Equal(t, want, res.Msg())
		assert.Equal(t, []string{running}, names(res["refused"]))
		assert.Equal(t, []any{}, res["removed"], "a refused run removed nothing")
		raw, err := json.Marshal(res)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), v.VCenterPassword)
		assert.NotContains(t, string(raw), v.KSCPassword)
	}
	assert.Len(t, k.FindByName(running), 1, "the running SVM's record stays")
	_, ok := k.Host(gone)
	assert.True(t, ok, "nothing half-done: the other record stays too")
	assert.Zero(t, k.Calls()["HostGroup.RemoveHosts"]+k.Calls()["HostGroup.MoveHostsToGroup"])

	// Power the SVM off: the same purge, with the vCenter options given as
	// options this time, removes both records.
	s, err := vsphere.Connect(ctx, vsphere.Conn{Hostname: v.VCenterHostname, Port: v.VCenterPort, Username: v.VCenterUsername,
		Password: v.VCenterPassword, ValidateCerts: true, CAFile: v.VCenterCAFile})
	require.NoError(t, err)
	defer s.Logout(context.WithoutCancel(ctx)) //nolint:errcheck // test cleanup
	vm, err := s.VM(ctx, nil, running)
	require.NoError(t, err)
	require.NoError(t, s.PowerOff(ctx, vm))
	require.NoError(t, l.Sync(ctx))

	res := ansibletest.Run(t, ctx, "ksc_purge", New(), labtest.Args(labtest.VCenterArgs(v), kscArgs), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.True(t, res.Changed())
	assert.Equal(t, []string{running, "svm-esxi-09-6.1"}, names(res["removed"]))
	assert.Empty(t, k.FindByName(running))
}

// A purge by version removes only the records proven gone: no VM of that
// name in any datacenter the KSC serves. The second site's running SVM
// keeps its record, and so does every running SVM of the first; a
// datacenter left out of served_datacenters cannot prove anything gone.
func TestPurgeByVersionProvesGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := startLab(t, ctx, true)
	v := l.Vars(l.Dir())
	k := l.KSC()
	const dc2 = "svm-esxi-dc2-01-6.1"
	require.Eventually(t, func() bool { return len(k.FindByName(dc2)) == 1 }, 10*time.Second, 20*time.Millisecond)
	ps := []kscsim.Product{{Key: v.PSProductKey, Version: v.OldVersion, DisplayName: v.PSProductName, ProdVersion: v.OldVersion}}
	k.UpsertHost(kscsim.Host{DisplayName: "svm-esxi-09-6.1", IP: "10.9.9.9", Products: ps})

	args := func(served ...any) map[string]any {
		return labtest.Args(labtest.VCenterArgs(v), map[string]any{"ksc_url": v.KSCURL, "ksc_username": v.KSCUsername,
			"ksc_password": v.KSCPassword, "ksc_fingerprint": v.KSCFingerprint, "product_version": v.OldVersion,
			"served_datacenters": served})
	}
	bad := ansibletest.Run(t, ctx, "ksc_purge", New(), args("DC1", "DC9"), ansibletest.Mode{})
	assert.True(t, bad.Failed())
	assert.Contains(t, bad.Msg(), "served_datacenters: read datacenter DC9")

	for _, check := range []bool{true, false} {
		res := ansibletest.Run(t, ctx, "ksc_purge", New(), args("DC1", "DC2"), ansibletest.Mode{Check: check, Diff: true})
		require.False(t, res.Failed(), res.Msg())
		assert.True(t, res.Changed())
		assert.Equal(t, []string{"svm-esxi-09-6.1"}, names(res["removed"]))
		assert.Equal(t, "no VM named svm-esxi-09-6.1 (name or guest host name) in datacenters DC1, DC2",
			ansibletest.Get(res["removed"], 0, "proof"))
		reasons := map[string]any{}
		for _, e := range res["kept"].([]any) {
			reasons[fmt.Sprint(ansibletest.Get(e, "name"))] = ansibletest.Get(e, "reason")
		}
		assert.Equal(t, map[string]any{
			"svm-esxi-01-6.1": "VM svm-esxi-01-6.1 exists in datacenter DC1 (on esxi-01.lab.local, poweredOn)",
			dc2:               "VM svm-esxi-dc2-01-6.1 exists in datacenter DC2 (on esxi-dc2-01.lab.local, poweredOn)",
		}, reasons)
		assert.Contains(t, ansibletest.Get(res, "diff", "before"), "KSC record svm-esxi-09-6.1 (id ")
	}
	assert.Empty(t, k.FindByName("svm-esxi-09-6.1"))
	assert.Len(t, k.FindByName(dc2), 1, "the second site's running SVM keeps its record")
	assert.Len(t, k.FindByName("svm-esxi-01-6.1"), 1)
}
