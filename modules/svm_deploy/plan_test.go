package svmdeploy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/vsphere"
)

func TestPlan(t *testing.T) {
	present := Options{Name: "svm-1", State: StatePresent, PowerOn: true, WaitForIP: true}
	absent := Options{Name: "svm-1", State: StateAbsent}
	obs := func(existing ...vmInfo) observed {
		return observed{Host: "esx1", Datastore: "ds1", Version: "6.2", ImageSHA256: "abc", Existing: existing}
	}
	marks := map[string]string{vsphere.MarkRole: vsphere.RoleSVM, vsphere.MarkVersion: "6.2", vsphere.MarkHost: "esx1"}
	ours := vmInfo{Name: "svm-1", Moid: "vm-7", Path: "/DC/vm/svm-1", Host: "esx1", Datastores: []string{"ds1"}, PowerState: "poweredOn", Marks: marks}
	with := func(v vmInfo, f func(*vmInfo)) vmInfo { f(&v); return v }
	newMarks := map[string]string{vsphere.MarkRole: vsphere.RoleSVM, vsphere.MarkVersion: "6.2",
		vsphere.MarkImageSHA256: "abc", vsphere.MarkDeployedBy: vsphere.DeployedBy,
		vsphere.MarkFirstContact: vsphere.FirstContactPending, vsphere.MarkHost: "esx1"}

	cases := []struct {
		name  string
		opts  Options
		obs   observed
		steps []string
		vm    string
		marks map[string]string
		err   string
	}{
		{name: "fresh", opts: present, obs: obs(), steps: []string{StepImport, StepMarks, StepPowerOn, StepWaitForIP}, marks: newMarks},
		{name: "fresh, powered off", opts: Options{Name: "svm-1", State: StatePresent, WaitForIP: true}, obs: obs(),
			steps: []string{StepImport, StepMarks}, marks: newMarks},
		{name: "fresh with first boot and a leftover", opts: present,
			obs: func() observed {
				o := obs()
				o.FirstBoot, o.LeftoverVMs = []string{"timezone UTC"}, []string{"/DC/vm/svm-1"}
				return o
			}(),
			steps: []string{StepCleanup, StepImport, StepMarks, StepFirstBoot, StepPowerOn, StepWaitForIP}, marks: newMarks},
		{name: "exists", opts: present, obs: obs(ours), vm: "vm-7"},
		{name: "exists, powered off", opts: present, obs: obs(with(ours, func(v *vmInfo) { v.PowerState = "poweredOff" })),
			steps: []string{StepPowerOn, StepWaitForIP}, vm: "vm-7"},
		{name: "exists, powered off, power_on false", opts: Options{Name: "svm-1", State: StatePresent},
			obs: obs(with(ours, func(v *vmInfo) { v.PowerState = "poweredOff" })), vm: "vm-7"},
		{name: "imported but not marked yet", opts: present,
			obs:   obs(with(ours, func(v *vmInfo) { v.Marks, v.DeployVersion, v.PowerState = nil, "6.2", "poweredOff" })),
			steps: []string{StepMarks, StepPowerOn, StepWaitForIP}, vm: "vm-7", marks: newMarks},
		{name: "marked before host marks", opts: present, obs: obs(with(ours, func(v *vmInfo) {
			v.Marks = map[string]string{vsphere.MarkRole: vsphere.RoleSVM, vsphere.MarkVersion: "6.2"}
		})), steps: []string{StepMarks}, vm: "vm-7", marks: map[string]string{vsphere.MarkHost: "esx1"}},
		{name: "moved away: back to the host its mark names", opts: present,
			obs: obs(with(ours, func(v *vmInfo) { v.Host = "esx2" })), steps: []string{StepMoveBack}, vm: "vm-7"},
		{name: "on another host, marked for it", opts: present,
			obs: obs(with(ours, func(v *vmInfo) {
				v.Host, v.Marks = "esx2", map[string]string{vsphere.MarkRole: vsphere.RoleSVM, vsphere.MarkVersion: "6.2", vsphere.MarkHost: "esx2"}
			})),
			err: "SVM svm-1 exists on host esx2, not on esx1: refusing to touch it (an SVM is pinned to its host; choose another name or set esxi_hostname to esx2)"},
		{name: "not ours", opts: present, obs: obs(with(ours, func(v *vmInfo) { v.Marks = map[string]string{"owner": "x"} })),
			err: "VM svm-1 (/DC/vm/svm-1) exists and is not an SVM marked by ksvla.lightagent (custom attribute ksvla.role: not set): refusing to overwrite it; choose another name"},
		{name: "another role", opts: absent, obs: obs(with(ours, func(v *vmInfo) { v.Marks = map[string]string{vsphere.MarkRole: "db"} })),
			err: "VM svm-1 (/DC/vm/svm-1) exists and is not an SVM marked by ksvla.lightagent (custom attribute ksvla.role: db): refusing to delete it; choose another name"},
		{name: "two of a name", opts: present, obs: obs(ours, with(ours, func(v *vmInfo) { v.Path = "/DC/vm/x/svm-1" })),
			err: "2 VMs are named svm-1: /DC/vm/svm-1, /DC/vm/x/svm-1; refusing to choose one (VM names must be unique)"},
		{name: "orphan folder", opts: present, obs: func() observed { o := obs(); o.LeftoverFolders = []string{"[ds1] svm-1"}; return o }(),
			err: "datastore folder [ds1] svm-1 exists but no VM named svm-1 is registered (an interrupted deletion, or an unregistered VM of someone else): delete or register it by hand, or choose another name"},
		{name: "absent", opts: absent, obs: obs(ours), steps: []string{StepDestroy}, vm: "vm-7"},
		{name: "absent, none", opts: absent, obs: obs()},
		{name: "absent, only a leftover", opts: absent, obs: func() observed { o := obs(); o.LeftoverVMs = []string{"/DC/vm/svm-1"}; return o }(),
			steps: []string{StepCleanup}},
		{name: "absent, right version", opts: Options{Name: "svm-1", State: StateAbsent, Version: "6.2"}, obs: obs(ours),
			steps: []string{StepDestroy}, vm: "vm-7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := plan(c.opts, c.obs)
			if c.err != "" {
				require.EqualError(t, err, c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.steps, p.Steps)
			assert.Equal(t, len(c.steps) == 0, p.Empty())
			assert.Equal(t, c.vm, p.VM)
			assert.Equal(t, c.marks, p.Marks)
		})
	}
}

func TestPlanDiff(t *testing.T) {
	o := observed{Host: "esx1", Datastore: "ds1", Version: "6.2", FirstBoot: []string{"timezone UTC"}}
	p, err := plan(Options{Name: "svm-1", State: StatePresent, PowerOn: true}, o)
	require.NoError(t, err)
	before, after := p.Diff()
	assert.Equal(t, map[string]any{}, before)
	assert.Equal(t, &Summary{Name: "svm-1", Host: "esx1", Datastore: "ds1", Version: "6.2", PowerState: "poweredOn",
		FirstBoot: []string{"timezone UTC"}}, after)

	cur := vmInfo{Name: "svm-1", Host: "esx1", Datastores: []string{"ds1"}, PowerState: "poweredOff",
		Marks: map[string]string{vsphere.MarkRole: vsphere.RoleSVM, vsphere.MarkVersion: "6.2"}}
	o.Existing = []vmInfo{cur}
	p, err = plan(Options{Name: "svm-1", State: StateAbsent}, o)
	require.NoError(t, err)
	before, after = p.Diff()
	assert.Equal(t, &Summary{Name: "svm-1", Host: "esx1", Datastore: "ds1", Version: "6.2", PowerState: "poweredOff", FirstBoot: []string{}}, before)
	assert.Equal(t, map[string]any{}, after)
}

func TestFirstBootCommands(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		want []string
		err  string
	}{
		{name: "normalised", in: []string{"  network eth0 192.0.2.45 255.255.255.0 192.0.2.255 192.0.2.1 ", "manageservices  restart\tnetwork", "ALWAYS"},
			want: []string{"network eth0 192.0.2.45 255.255.255.0 192.0.2.255 192.0.2.1", "manageservices restart network", "ALWAYS"}},
		{name: "none", in: nil, want: []string{}},
		{name: "empty", in: []string{"timezone UTC", "  "}, err: "first_boot command 2: klconfig: empty command"},
		{name: "passwd, secret not echoed", in: []string{"passwd root S3cret"},
			err: "first_boot command 1 (passwd) is refused: passwd reads the new password from standard input, which halts the SVM's first boot (vendor); set passwords with ksvla.lightagent.svm_klconfig after deployment"},
		{name: "dollar", in: []string{"dns $(reboot)"}, err: `first_boot command 1: klconfig dns argument 1: argument "$(reboot)" holds a character that is not allowed (whitespace, quotes, ';' and shell characters are refused)`},
		{name: "carriage return", in: []string{"timezone UTC\r"}, err: "first_boot command 1: klconfig: command line holds a line break: give one command per line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := firstBootCommands(c.in)
			if c.err != "" {
				require.EqualError(t, err, c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			assert.Equal(t, c.want, nonNil(firstBootList(firstBootConfig(got))), "round trip through extraConfig keys")
		})
	}
}
