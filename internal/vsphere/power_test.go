package vsphere

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

func fastPolling(t testing.TB) {
	first, max := pollFirst, pollMax
	pollFirst, pollMax = 5*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { pollFirst, pollMax = first, max })
}

func powerState(t testing.TB, s *Session, vm *object.VirtualMachine) types.VirtualMachinePowerState {
	t.Helper()
	st, err := s.vmState(context.Background(), vm)
	require.NoError(t, err)
	return st.power
}

func TestPower(t *testing.T) {
	fastPolling(t)
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()
	vm, err := s.VM(ctx, nil, "DC0_H0_VM0")
	require.NoError(t, err)
	require.Equal(t, types.VirtualMachinePowerStatePoweredOn, powerState(t, s, vm))

	// No tools: WaitForIP times out with a hint, Shutdown powers off hard.
	_, err = s.WaitForIP(ctx, vm, 30*time.Millisecond)
	assert.ErrorContains(t, err, "wait for ip of vm DC0_H0_VM0: no address after 30ms (VMware Tools must run in the guest")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.WaitForIP(cctx, vm, time.Hour)
	assert.ErrorIs(t, err, context.Canceled, "ctx ends the wait")

	require.NoError(t, s.Shutdown(ctx, vm, time.Second))
	assert.Equal(t, types.VirtualMachinePowerStatePoweredOff, powerState(t, s, vm))
	require.NoError(t, s.Shutdown(ctx, vm, time.Second), "already off")
	require.NoError(t, s.PowerOff(ctx, vm), "already off")

	// With tools running the guest is asked to shut down.
	require.NoError(t, s.PowerOn(ctx, vm))
	task, err := vm.Reconfigure(ctx, extraConfigSpec(map[string]string{"SET.guest.toolsRunningStatus": string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)}))
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))
	require.NoError(t, s.Shutdown(ctx, vm, 5*time.Second))
	assert.Equal(t, types.VirtualMachinePowerStatePoweredOff, powerState(t, s, vm))

	// Faults carry the operation and the VM name.
	require.NoError(t, s.Destroy(ctx, vm))
	err = s.PowerOn(ctx, vm)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestLeftover(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()
	dc, err := s.Datacenter(ctx, "")
	require.NoError(t, err)
	ds, err := s.Datastore(ctx, dc, "LocalDS_0")
	require.NoError(t, err)

	// An import interrupted after the VM was created carries the marker.
	res, err := s.Import(ctx, importSpec(writeTestOVA(t, 1<<10)))
	require.NoError(t, err)
	task, err := res.VM.Reconfigure(ctx, extraConfigSpec(map[string]string{ImportMarkerKey: ImportMarkerIncomplete}))
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))

	lo, err := s.FindLeftover(ctx, dc, "svm-esx01", ds)
	require.NoError(t, err)
	require.NotNil(t, lo)
	require.Len(t, lo.VMs, 1)
	assert.Equal(t, res.VM.Reference(), lo.VMs[0].Reference())
	assert.Empty(t, lo.Folders, "the folder belongs to the registered vm")
	require.NoError(t, s.CleanupLeftover(ctx, lo))
	assertNoVM(t, s, "svm-esx01")

	// A VM without the marker is never a leftover.
	lo, err = s.FindLeftover(ctx, dc, "DC0_H0_VM0", ds)
	require.NoError(t, err)
	assert.Nil(t, lo)

	// An orphan datastore folder blocks a new import: it is reported.
	require.NoError(t, object.NewFileManager(s.c).MakeDirectory(ctx, ds.Path("svm-orphan"), dc, true))
	lo, err = s.FindLeftover(ctx, dc, "svm-orphan", ds)
	require.NoError(t, err)
	require.NotNil(t, lo)
	assert.Equal(t, []string{"[LocalDS_0] svm-orphan"}, lo.Folders)
	require.NoError(t, s.CleanupLeftover(ctx, lo))
	lo, err = s.FindLeftover(ctx, dc, "svm-orphan", ds)
	require.NoError(t, err)
	assert.Nil(t, lo)
}
