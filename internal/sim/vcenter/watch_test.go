package vcenter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

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
