package vcenter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// The govmomi v0.56.0 simulator deadlocks a property filter that
// traverses a container view against that view's update when a VM is
// created (filter lock -> view lock in WaitForUpdatesEx, view lock ->
// filter lock in ContainerView.PutObject; fixed upstream by
// vmware/govmomi#4109). The watcher must not depend on that order: many
// VMs created at once, as the waves of a 64-host upgrade do, must all be
// reported and every call must return.
func TestWatcherSurvivesManyConcurrentCreates(t *testing.T) {
	v, c, ev := start(t, Config{Hosts: 8, VMsPerHost: 1})
	finder := labFinder(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	folder, err := finder.DefaultFolder(ctx)
	require.NoError(t, err)
	hosts := v.Inventory().Hosts

	const workers, perWorker = 16, 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	gctx := ctx
	for w := range workers {
		h := hosts[w%len(hosts)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = func() error {
				host, err := finder.HostSystem(gctx, h.Name)
				if err != nil {
					return err
				}
				pool, err := host.ResourcePool(gctx)
				if err != nil {
					return err
				}
				for i := range perWorker {
					name := fmt.Sprintf("stress-%d-%d", w, i)
					spec := types.VirtualMachineConfigSpec{Name: name, GuestId: "otherGuest",
						Files: &types.VirtualMachineFileInfo{VmPathName: "[" + LocalDatastoreName(h.Name) + "]"}}
					task, err := folder.CreateVM(gctx, spec, pool, host)
					if err != nil {
						return err
					}
					info, err := task.WaitForResult(gctx)
					if err != nil {
						return fmt.Errorf("create %s: %w", name, err)
					}
					vm := object.NewVirtualMachine(c.Client, info.Result.(types.ManagedObjectReference))
					if task, err = vm.PowerOn(gctx); err != nil {
						return err
					}
					if err = task.Wait(gctx); err != nil {
						return fmt.Errorf("power on %s: %w", name, err)
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...), "a create or power-on did not return: the simulator deadlocked")
	var missing []string
	require.Eventually(t, func() bool {
		_, vms := ev.snapshot()
		missing = missing[:0]
		for w := range workers {
			for i := range perWorker {
				if name := fmt.Sprintf("stress-%d-%d", w, i); vms["on "+name].Name == "" {
					missing = append(missing, name)
				}
			}
		}
		return len(missing) == 0
	}, 30*time.Second, 50*time.Millisecond, "the watcher did not report every power-on: %v", &missing)
}

// The watcher reads the VMs once per burst of events, so it must not
// lose what happened between two reads: a power cycle faster than a read
// is reported as off then on, and the changes of two VMs come in the order
// vCenter made them (the lab judges protection at each step).
func TestWatcherKeepsFastChangesAndTheirOrder(t *testing.T) {
	v, c, ev := start(t, Config{Hosts: 2, VMsPerHost: 1})
	ctx := context.Background()
	finder := labFinder(t, c)
	inv := v.Inventory()
	vm, err := finder.VirtualMachine(ctx, inv.Hosts[0].ProtectedVMs[0])
	require.NoError(t, err)
	name := inv.Hosts[0].ProtectedVMs[0]
	for range 5 {
		before, _ := ev.snapshot()
		task, err := vm.PowerOff(ctx)
		require.NoError(t, err)
		require.NoError(t, task.Wait(ctx))
		task, err = vm.PowerOn(ctx)
		require.NoError(t, err)
		require.NoError(t, task.Wait(ctx))
		require.Eventually(t, func() bool {
			log, _ := ev.snapshot()
			return len(log) >= len(before)+2
		}, 5*time.Second, 10*time.Millisecond, "a power cycle was not reported")
		log, _ := ev.snapshot()
		require.Equal(t, []string{"off " + name, "on " + name}, log[len(before):], "a fast power cycle")
	}

	// Two VMs powered off one right after the other: reported in that order.
	other, err := finder.VirtualMachine(ctx, inv.Hosts[1].ProtectedVMs[0])
	require.NoError(t, err)
	before, _ := ev.snapshot()
	for _, m := range []*object.VirtualMachine{other, vm} {
		task, err := m.PowerOff(ctx)
		require.NoError(t, err)
		require.NoError(t, task.Wait(ctx))
	}
	require.Eventually(t, func() bool { log, _ := ev.snapshot(); return len(log) >= len(before)+2 }, 5*time.Second, 10*time.Millisecond)
	log, _ := ev.snapshot()
	assert.Equal(t, []string{"off " + inv.Hosts[1].ProtectedVMs[0], "off " + name}, log[len(before):])
}
