package vsphere

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
)

func TestFindTarget(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()
	dc, err := s.Datacenter(ctx, "")
	require.NoError(t, err)
	h, err := s.Host(ctx, dc, "DC0_C0_H1")
	require.NoError(t, err)

	cases := []struct {
		name          string
		spec          TargetSpec
		host, ds, err string
	}{
		{name: "host only", spec: TargetSpec{Host: "DC0_C0_H0"}, host: "DC0_C0_H0"},
		// A MoRef or path is named as vCenter names the host.
		{name: "host by moref", spec: TargetSpec{Datacenter: "DC0", Host: h.Reference().String()}, host: "DC0_C0_H1"},
		{name: "host by path", spec: TargetSpec{Host: "/DC0/host/DC0_H0/DC0_H0"}, host: "DC0_H0"},
		{name: "import", spec: TargetSpec{Host: "DC0_H0", Import: true, Datastore: "/DC0/datastore/LocalDS_0"}, host: "DC0_H0", ds: "LocalDS_0"},
		// Without Import the placement options are not looked at.
		{name: "no import, bad datastore", spec: TargetSpec{Host: "DC0_H0", Datastore: "nope", Folder: "nope"}, host: "DC0_H0"},
		{name: "no host", spec: TargetSpec{Host: "esx-missing"}, err: `host "esx-missing" not found`},
		{name: "no datastore", spec: TargetSpec{Host: "DC0_H0", Import: true, Datastore: "nope"}, err: `datastore "nope" not found`},
		{name: "no folder", spec: TargetSpec{Host: "DC0_H0", Import: true, Datastore: "LocalDS_0", Folder: "svms"}, err: `folder "svms" not found`},
		{name: "no pool", spec: TargetSpec{Host: "DC0_H0", Import: true, Datastore: "LocalDS_0", ResourcePool: "rp-missing"}, err: `resource pool "rp-missing" not found`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg, err := s.FindTarget(ctx, c.spec)
			if c.err != "" {
				require.ErrorIs(t, err, ErrNotFound)
				assert.Contains(t, err.Error(), c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.host, tg.Host)
			assert.Equal(t, c.ds, tg.Datastore)
		})
	}
}

func TestVMsNamed(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()
	tg, err := s.FindTarget(ctx, TargetSpec{Host: "DC0_H0"})
	require.NoError(t, err)
	vm, err := s.VM(ctx, nil, "DC0_H0_VM0")
	require.NoError(t, err)
	require.NoError(t, s.SetMarks(ctx, vm, map[string]string{MarkRole: RoleSVM, MarkVersion: "6.2"}))
	require.NoError(t, runTask(ctx, "reconfigure", "DC0_H0_VM0", func(ctx context.Context) (*object.Task, error) {
		return vm.Reconfigure(ctx, extraConfigSpec(map[string]string{FirstBootPrefix + "cmd1": "timezone UTC"}))
	}))

	got, err := tg.VMsNamed(ctx, "DC0_H0_VM0", nil)
	require.NoError(t, err)
	require.Len(t, got, 1)
	d := got[0]
	assert.Equal(t, vm.Reference().Value, d.Moid)
	assert.Equal(t, "DC0_H0_VM0", d.Name)
	assert.Equal(t, "/DC0/vm/DC0_H0_VM0", d.Path)
	assert.Equal(t, "DC0_H0", d.Host, "the host's name, not its MoRef")
	assert.Equal(t, []string{"LocalDS_0"}, d.Datastores)
	assert.Equal(t, "poweredOn", d.PowerState)
	assert.NotEmpty(t, d.InstanceUUID)
	assert.Equal(t, map[string]string{MarkRole: RoleSVM, MarkVersion: "6.2"}, d.Marks)
	assert.Equal(t, "timezone UTC", d.ExtraConfig[FirstBootPrefix+"cmd1"])

	// Read by MoRef alone, the VM has no inventory path: its name stands in.
	byRef, err := s.ReadVM(ctx, s.VMRef(d.Moid))
	require.NoError(t, err)
	d.Path = "DC0_H0_VM0"
	assert.Equal(t, d, byRef)
	assert.Nil(t, s.VMRef(""))

	// A leftover of the name is not one of the VMs named.
	skip := &Leftover{Name: "DC0_H0_VM0", VMs: []*object.VirtualMachine{vm}}
	got, err = tg.VMsNamed(ctx, "DC0_H0_VM0", skip)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, []string{"/DC0/vm/DC0_H0_VM0"}, skip.VMPaths())
	assert.Nil(t, (*Leftover)(nil).VMPaths())

	got, err = tg.VMsNamed(ctx, "no-such-vm", nil)
	require.NoError(t, err)
	assert.Empty(t, got)
}
