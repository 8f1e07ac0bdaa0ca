package svmklconfig

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/internal/vsphere"
	svmdeploy "github.com/ksvla/lightagent/modules/svm_deploy"
)

// vmEnv is a lab in its field profile (the image's password, a host key no known_hosts holds)
// with one SVM svm_deploy has just created.
type vmEnv struct {
	l    *sim.Lab
	v    sim.Vars
	s    *vsphere.Session
	name string
}

func deployFresh(t *testing.T, cfg sim.Config) vmEnv {
	t.Helper()
	cfg.Hosts, cfg.VMsPerHost = 1, -1
	l := labtest.Start(t, cfg)
	e := vmEnv{l: l, v: l.Vars(l.Dir()), s: labtest.VSphere(t, l)}
	host := e.v.ESXiHosts[0]
	e.name = e.v.SVMs[host]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := ansibletest.Run(t, ctx, "svm_deploy", svmdeploy.New(), labtest.Args(labtest.VCenterArgs(e.v), map[string]any{
		"datacenter": e.v.Datacenter, "esxi_hostname": host, "datastore": e.v.LocalDatastores[host],
		"name": e.name, "image": e.v.NewImage.Path, "version": e.v.NewVersion, "wait_timeout": 30, "timeout": 120,
	}), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	require.Equal(t, vsphere.FirstContactPending, e.marks(t)[vsphere.MarkFirstContact], "svm_deploy marks the VM it created")
	return e
}

// args configure the SVM by its VM with a controller of its own: an empty record directory and the
// lab's known_hosts, which holds no new SVM's key.
func (e vmEnv) args(t *testing.T, extra map[string]any) map[string]any {
	t.Helper()
	return labtest.Args(map[string]any{
		"vm": e.name, "datacenter": e.v.Datacenter, "vcenter": labtest.VCenterArgs(e.v),
		"port": e.v.SVMSSHPort, "password": e.v.SVMKlconfigPassword, "image_password": e.v.SVMImagePassword,
		"known_hosts": e.v.SVMKnownHosts, "record_path": t.TempDir(), "wait_timeout": 5, "connect_timeout": 5,
		"timezone": "Europe/Berlin",
		"ksc":      map[string]any{"address": e.v.KSCNagentAddress, "ssl_port": e.v.KSCNagentSSLPort, "port": e.v.KSCNagentPort},
	}, extra)
}

func (e vmEnv) marks(t *testing.T) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := e.s.VMContact(ctx, nil, e.name)
	require.NoError(t, err)
	return c.Marks
}

func (e vmEnv) setMarks(t *testing.T, marks map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := e.s.VMContact(ctx, nil, e.name)
	require.NoError(t, err)
	require.NoError(t, e.s.SetMarks(ctx, c.VM, marks))
}

func (e vmEnv) run(t *testing.T, args map[string]any, mode ansibletest.Mode) ansible.Result {
	t.Helper()
	res := run(t, args, mode)
	raw, err := json.Marshal(res)
	require.NoError(t, err)
	for _, secret := range []string{e.v.SVMKlconfigPassword, e.v.SVMImagePassword, e.v.VCenterPassword} {
		require.NotContains(t, string(raw), secret, "a secret leaked into the result")
	}
	return res
}

// A VM svm_deploy has just created: check mode shows the first contact and changes nothing; the
// run trusts the key only there, records it on the VM, replaces the image's password once and
// keeps the record on the VM; a controller with no record and an empty known_hosts then verifies
// the key strictly and sends nothing.
func TestFirstContact(t *testing.T) {
	e := deployFresh(t, sim.Config{})
	sv := e.l.SVM(e.name)
	require.NotNil(t, sv)
	fp := ssh.FingerprintSHA256(sv.HostKey())

	check := e.run(t, e.args(t, nil), ansibletest.Mode{Check: true, Diff: true})
	require.False(t, check.Failed(), check.Msg())
	assert.True(t, check.Changed())
	assert.Equal(t, map[string]any{"name": e.name, "host_key": fp, "trust": trustFirstContact,
		"steps": []any{vmSteps[stepTrustKey]}}, check["vm"])
	diff := check["diff"].(map[string]any)
	assert.Equal(t, "(first contact)", diff["before"].(map[string]any)["host_key"])
	assert.Equal(t, fp, diff["after"].(map[string]any)["host_key"])
	assert.Equal(t, map[string]any{"klconfig": pwImage}, diff["before"].(map[string]any)["passwords"])
	assert.Equal(t, map[string]any{"klconfig": pwChanged}, diff["after"].(map[string]any)["passwords"])
	assert.Contains(t, check["commands"], "passwd klconfig")
	assert.Equal(t, vsphere.FirstContactPending, e.marks(t)[vsphere.MarkFirstContact], "check mode trusts nothing")
	assert.Empty(t, e.marks(t)[vsphere.MarkHostKey])
	assert.Zero(t, e.l.CommandCounts(e.name)["passwd"])
	assert.Zero(t, e.l.CommandCounts(e.name)["nagent"])

	first := e.run(t, e.args(t, nil), ansibletest.Mode{})
	require.False(t, first.Failed(), first.Msg())
	assert.True(t, first.Changed())
	marks := e.marks(t)
	assert.Empty(t, marks[vsphere.MarkFirstContact], "first contact is over")
	assert.Equal(t, keyLine(sv.HostKey()), marks[vsphere.MarkHostKey])
	var rec Record
	require.NoError(t, json.Unmarshal([]byte(marks[vsphere.MarkKlconfig]), &rec))
	assert.Equal(t, fp, rec.HostKey)
	assert.NotEmpty(t, rec.ImagePasswordReplacedAt)
	assert.Contains(t, rec.Settings, setKSC)
	assert.Contains(t, rec.Settings, setPwdKlconfig)
	assert.NotContains(t, marks[vsphere.MarkKlconfig], e.v.SVMKlconfigPassword)
	assert.Equal(t, 1, e.l.CommandCounts(e.name)["passwd"])
	assert.Equal(t, 1, e.l.CommandCounts(e.name)["nagent"])
	assert.Equal(t, "Europe/Berlin", sv.State().Timezone)

	// Another controller: no record, a known_hosts that does not exist, the same task.
	again := e.run(t, e.args(t, map[string]any{"known_hosts": t.TempDir() + "/known_hosts"}), ansibletest.Mode{})
	require.False(t, again.Failed(), again.Msg())
	assert.False(t, again.Changed(), "commands %v", again["commands"])
	assert.Equal(t, trustRecorded, again["vm"].(map[string]any)["trust"])
	assert.Equal(t, 1, e.l.CommandCounts(e.name)["passwd"], "the image's password is replaced once")
	assert.Equal(t, 1, e.l.CommandCounts(e.name)["nagent"], "no controller re-sends nagent")
}

// Every way the host key or address is not what the VM says is refused before anything is sent.
func TestFirstContactRefused(t *testing.T) {
	e := deployFresh(t, sim.Config{})
	sv := e.l.SVM(e.name)
	require.NotNil(t, sv)
	other, _, _, _, err := ssh.ParseAuthorizedKey([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"))
	require.NoError(t, err)

	tests := []struct {
		name  string
		marks map[string]string
		extra map[string]any
		want  string
	}{
		{"not awaiting first contact, key unknown", map[string]string{vsphere.MarkFirstContact: ""}, nil,
			"no host key is recorded on vm " + e.name + " and the VM does not await first contact (custom attribute ksvla.first_contact=pending"},
		{"key differs from the record", map[string]string{vsphere.MarkHostKey: keyLine(other)}, nil,
			"does not match the key recorded on vm " + e.name + " (custom attribute ksvla.host_key, " + ssh.FingerprintSHA256(other) + ")"},
		{"address vCenter does not report", nil, map[string]any{"host": "127.0.0.1"},
			"host 127.0.0.1 is not an address vCenter reports for vm " + e.name + " (" + sv.IP() + ")"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.setMarks(t, map[string]string{vsphere.MarkFirstContact: vsphere.FirstContactPending, vsphere.MarkHostKey: ""})
			if tc.marks != nil {
				e.setMarks(t, tc.marks)
			}
			before := e.marks(t)
			res := e.run(t, e.args(t, tc.extra), ansibletest.Mode{})
			require.True(t, res.Failed())
			assert.Contains(t, res.Msg(), tc.want)
			assert.Equal(t, before, e.marks(t), "nothing recorded")
			assert.Zero(t, e.l.CommandCounts(e.name)["passwd"])
			assert.Zero(t, e.l.CommandCounts(e.name)["nagent"])
		})
	}
}

// An old SVM (no first-contact mark) whose key the admin's known_hosts holds: verified there, then
// recorded on the VM, so a controller without that known_hosts verifies it too.
func TestKnownHostsKeyRecordedOnVM(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	e := vmEnv{l: l, v: l.Vars(l.Dir()), s: labtest.VSphere(t, l), name: l.VCenter().Inventory().Hosts[0].OldSVM}
	args := func(extra map[string]any) map[string]any {
		return e.args(t, labtest.Args(map[string]any{"ksc": nil, "image_password": nil}, extra))
	}
	res := e.run(t, args(nil), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.True(t, res.Changed())
	assert.Equal(t, []any{vmSteps[stepRecordKey]}, res["vm"].(map[string]any)["steps"])
	assert.Equal(t, keyLine(l.SVM(e.name).HostKey()), e.marks(t)[vsphere.MarkHostKey])

	res = e.run(t, args(map[string]any{"known_hosts": t.TempDir() + "/none"}), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.False(t, res.Changed(), "timezone from the VM's record: %v", res["commands"])
}

// A freshly booted SVM whose SSH does not answer yet: the first contact waits up to wait_timeout,
// then trusts the key; when the SVM stays silent longer, it fails naming the wait, trusting nothing.
func TestFirstContactWaitsForSSH(t *testing.T) {
	e := deployFresh(t, sim.Config{})
	e.l.RefuseSSH(e.name, true)
	res := e.run(t, e.args(t, map[string]any{"wait_timeout": 1}), ansibletest.Mode{})
	require.True(t, res.Failed())
	assert.Contains(t, res.Msg(), "first contact with vm "+e.name+" at ")
	assert.Contains(t, res.Msg(), "the SVM does not answer over SSH within wait_timeout=1s")
	assert.Contains(t, res.Msg(), "connection refused")
	assert.Equal(t, vsphere.FirstContactPending, e.marks(t)[vsphere.MarkFirstContact])

	time.AfterFunc(time.Second, func() { e.l.RefuseSSH(e.name, false) })
	start := time.Now()
	res = e.run(t, e.args(t, map[string]any{"wait_timeout": 20}), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "it waited for the SVM")
	assert.Empty(t, e.marks(t)[vsphere.MarkFirstContact])
}

// With vm and no vcenter option, the VMWARE_* variables (AWX's VMware credential) make the
// connection, the password masked like the option's.
func TestVCenterFromEnvironment(t *testing.T) {
	e := deployFresh(t, sim.Config{})
	env := map[string]string{"VMWARE_HOST": e.v.VCenterHostname, "VMWARE_PORT": strconv.Itoa(e.v.VCenterPort),
		"VMWARE_USER": e.v.VCenterUsername, "VMWARE_PASSWORD": e.v.VCenterPassword, "VMWARE_CA_FILE": e.v.VCenterCAFile}
	res := e.run(t, e.args(t, map[string]any{"vcenter": nil}), ansibletest.Mode{Check: true, Env: env})
	require.False(t, res.Failed(), res.Msg())
	assert.Equal(t, trustFirstContact, res["vm"].(map[string]any)["trust"])

	res = e.run(t, e.args(t, map[string]any{"vcenter": nil}), ansibletest.Mode{Check: true})
	require.True(t, res.Failed())
	assert.Equal(t, "vcenter: hostname is required: set the hostname option or export VMWARE_HOST=...", res.Msg())
}
