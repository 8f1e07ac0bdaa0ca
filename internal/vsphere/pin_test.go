package vsphere

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/sim/images"
)

func TestDescriptorResources(t *testing.T) {
	p := filepath.Join(t.TempDir(), "svm.ova")
	_, err := images.WriteOVA(p, images.Spec{Version: testVersion, DiskBytes: 3 << 20, CPUs: 4, MemoryMB: 8192})
	require.NoError(t, err)
	d, err := ReadDescriptor(context.Background(), p)
	require.NoError(t, err)
	assert.Equal(t, 4, d.CPUs)
	assert.Equal(t, int64(8192), d.MemoryMB)
	// The provisioned size (the lab's images declare twice the payload plus 1 MiB).
	assert.Equal(t, int64(7<<20), d.DiskCapacityBytes)
}

// Pinning against the simulator's own model: a cluster without HA needs
// the autostart entry, which the plain simulator's hosts cannot hold (the
// lab adds an autostart manager); with HA on, the overrides pin.
func TestPinAndUnpin(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()
	vm, err := s.VM(ctx, nil, "DC0_C0_RP0_VM0")
	require.NoError(t, err)
	other, err := s.VM(ctx, nil, "DC0_H0_VM0")
	require.NoError(t, err)

	p, err := s.Placement(ctx, vm)
	require.NoError(t, err)
	assert.Equal(t, "DC0_C0", p.Cluster)
	assert.False(t, p.HA)
	assert.Equal(t, []string{"DRS override", "HA override", "autostart"}, p.Missing())
	assert.Equal(t, map[string]any{"drs_automation_disabled": false, "ha_restart_disabled": false, "autostart": false}, p.Settings())
	err = s.Pin(ctx, p)
	assert.ErrorContains(t, err, "pin vm DC0_C0_RP0_VM0: host "+p.Host+" has no autostart manager")

	p, err = s.Placement(ctx, vm)
	require.NoError(t, err)
	assert.Equal(t, []string{"autostart"}, p.Missing(), "the cluster overrides were set")

	c, err := s.Cluster(ctx, nil, "DC0_C0")
	require.NoError(t, err)
	task, err := c.Reconfigure(ctx, &types.ClusterConfigSpecEx{DasConfig: &types.ClusterDasConfigInfo{Enabled: types.NewBool(true)}}, true)
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))
	p, err = s.Placement(ctx, vm)
	require.NoError(t, err)
	assert.True(t, p.Pinned(), "in an HA cluster the overrides pin: %v", p.Missing())
	require.NoError(t, s.Pin(ctx, p), "nothing left to set")

	// The batch read agrees with the single one; a standalone host needs
	// only autostart.
	all, err := s.Placements(ctx, []string{vm.Reference().Value, other.Reference().Value})
	require.NoError(t, err)
	assert.Equal(t, p.Missing(), all[vm.Reference().Value].Missing())
	assert.Equal(t, p.Host, all[vm.Reference().Value].Host)
	assert.Equal(t, []string{"autostart"}, all[other.Reference().Value].Missing())

	require.NoError(t, s.Unpin(ctx, p))
	p, err = s.Placement(ctx, vm)
	require.NoError(t, err)
	assert.Equal(t, []string{"DRS override", "HA override"}, p.Missing())
	require.NoError(t, s.Pin(ctx, p), "pinned again after an unpin")
	p, err = s.Placement(ctx, vm)
	require.NoError(t, err)
	assert.True(t, p.Pinned())

	// An HA override someone set with only the old restartPriority field
	// (no dasSettings) is replaced, not edited.
	require.NoError(t, s.Unpin(ctx, p))
	task, err = c.Reconfigure(ctx, &types.ClusterConfigSpecEx{DasVmConfigSpec: []types.ClusterDasVmConfigSpec{{
		ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
		Info:            &types.ClusterDasVmConfigInfo{Key: vm.Reference(), RestartPriority: types.DasVmPriorityHigh},
	}}}, true)
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))
	p, err = s.Placement(ctx, vm)
	require.NoError(t, err)
	assert.Equal(t, []string{"DRS override", "HA override"}, p.Missing())
	require.NoError(t, s.Pin(ctx, p))
	p, err = s.Placement(ctx, vm)
	require.NoError(t, err)
	assert.True(t, p.Pinned(), "%v", p.Missing())
}

func TestCapacity(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()
	h, err := s.Host(ctx, nil, "DC0_H0")
	require.NoError(t, err)
	ds, err := s.Datastore(ctx, nil, "LocalDS_0")
	require.NoError(t, err)
	c, err := s.Capacity(ctx, h, ds)
	require.NoError(t, err)
	assert.Equal(t, "DC0_H0", c.Host)
	assert.Positive(t, c.MemoryMB)
	assert.Positive(t, c.CPUs)
	assert.Equal(t, int64(32), c.UsedMemoryMB, "the one powered-on VM of DC0_H0 (the simulator gives VMs 32 MB)")
	assert.Equal(t, c.MemoryMB-32, c.FreeMemoryMB())
	assert.Equal(t, "LocalDS_0", c.Datastore)
	assert.Positive(t, c.DatastoreFree)

	vm, err := s.VM(ctx, nil, "DC0_H0_VM0")
	require.NoError(t, err)
	require.NoError(t, s.PowerOff(ctx, vm))
	c, err = s.Capacity(ctx, h, nil)
	require.NoError(t, err)
	assert.Zero(t, c.UsedMemoryMB, "a powered-off VM holds no memory")
}
