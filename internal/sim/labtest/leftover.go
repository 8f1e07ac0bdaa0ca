package labtest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/vsphere"
)

// HalfImportedVM creates what a killed import leaves: a VM of name on host
// (its files on datastore) whose extraConfig still says the import is
// incomplete. It returns the VM's managed object id. Module tests use it
// so that only the lab drives the simulator with govmomi.
func HalfImportedVM(t testing.TB, s *vsphere.Session, datacenter, host, datastore, name string) string {
	t.Helper()
	ctx := context.Background()
	dc, err := s.Datacenter(ctx, datacenter)
	require.NoError(t, err)
	h, err := s.Host(ctx, dc, host)
	require.NoError(t, err)
	pool, err := s.ResourcePool(ctx, dc, h, "")
	require.NoError(t, err)
	folder, err := s.Folder(ctx, dc, "")
	require.NoError(t, err)
	spec := types.VirtualMachineConfigSpec{
		Name: name, GuestId: "otherLinux64Guest", NumCPUs: 1, MemoryMB: 64,
		Files:       &types.VirtualMachineFileInfo{VmPathName: "[" + datastore + "]"},
		ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: vsphere.ImportMarkerKey, Value: vsphere.ImportMarkerIncomplete}},
	}
	task, err := folder.CreateVM(ctx, spec, pool, h)
	require.NoError(t, err)
	info, err := task.WaitForResult(ctx)
	require.NoError(t, err)
	ref, ok := info.Result.(types.ManagedObjectReference)
	require.True(t, ok, "CreateVM returned %T", info.Result)
	lo, err := s.FindLeftover(ctx, dc, name)
	require.NoError(t, err)
	require.NotNil(t, lo)
	require.Len(t, lo.VMs, 1)
	return ref.Value
}
