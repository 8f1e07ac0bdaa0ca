package vcenter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// VM is what the watcher reports about a virtual machine, read when the
// event is seen (for OnDestroy: as last read, the VM being gone).
type VM struct {
	Ref          types.ManagedObjectReference
	Name         string
	Host         string            // ESXi host name
	ExtraConfig  map[string]string // config.extraConfig (string values)
	CustomValues map[string]string // custom attributes by attribute name
	Product      Product           // first vApp product, zero if none
	GuestIP      string
}

// Product is a vApp product of a VM.
type Product struct {
	Name    string
	Version string
}

// Hooks receive VM power and lifecycle events. They are called one at a
// time, in the order the events happen, from the watcher goroutine; a
// hook may call back into the VCenter (SetGuestIP) but must not block for
// long, or later events wait. Nil hooks are skipped.
type Hooks struct {
	OnPowerOn  func(vm VM) // also for every VM already powered on at Start
	OnPowerOff func(vm VM)
	OnDestroy  func(vm VM)
	// OnMove: a known VM now runs on another host (vm.Host); vMotion
	// or an HA restart.
	OnMove func(vm VM)
}

// watchedProps are the properties whose changes the watcher follows.
//
// Why a property collector and not the simulator's registry handlers:
// handlers run inside the simulator's locks (calling back deadlocks) and
// see only internal objects, while WaitForUpdatesEx over the inventory
// is what a real vCenter client does. The simulator does not publish
// every change through the collector, though: keyed extraConfig changes
// and SetField custom values never reach it. So the collector only says
// *when* a VM was powered on, off or destroyed, and the VM's details are
// read afresh at that moment.
var watchedProps = []string{"name", "runtime.powerState", "runtime.host"}

var detailProps = []string{"name", "runtime.host", "runtime.powerState", "config.extraConfig",
	"customValue", "config.vAppConfig", "guest.ipAddress"}

type watcher struct {
	c      *vim25.Client
	hooks  Hooks
	logf   func(string, ...any)
	on     map[types.ManagedObjectReference]bool
	last   map[types.ManagedObjectReference]VM
	hosts  map[types.ManagedObjectReference]string
	fields map[int32]string
}

// watch follows VM power state until ctx ends, closing synced after the
// first batch (the VMs that exist at start). A failed wait is retried
// with a fresh filter; the power-state cache makes the retry report only
// what changed in between.
func (v *VCenter) watch(ctx context.Context, synced chan struct{}) error {
	w := &watcher{c: v.client.Client, hooks: v.cfg.Hooks, logf: v.cfg.Logf,
		on: map[types.ManagedObjectReference]bool{}, last: map[types.ManagedObjectReference]VM{},
		hosts: map[types.ManagedObjectReference]string{}, fields: map[int32]string{}}
	for {
		err := w.run(ctx, synced)
		if ctx.Err() != nil {
			return nil
		}
		if synced != nil {
			select {
			case <-synced:
			default:
				return err // never synced: Start reports it
			}
		}
		w.logf("vcenter watcher: %v; retrying", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (w *watcher) run(ctx context.Context, synced chan struct{}) error {
	pc, err := property.DefaultCollector(w.c).Create(ctx)
	if err != nil {
		return fmt.Errorf("create property collector: %w", err)
	}
	defer func() { _ = pc.Destroy(context.Background()) }() // best effort: the session ends with the lab
	// From the root folder through the inventory tree, not over a
	// container view: the govmomi v0.56.0 simulator locks a filter over a
	// view in both orders (the filter, then the view in WaitForUpdatesEx;
	// the view, then the filter when a VM is added to it), and under many
	// parallel imports that deadlocks (vmware/govmomi#4109, fixed after
	// the pinned version). The root folder never changes during a run, so
	// the filter is never locked from the other side.
	filter := new(property.WaitFilter).Add(w.c.ServiceContent.RootFolder, "VirtualMachine", watchedProps, vmTraversal()...)
	filter.Spec.ObjectSet[0].Skip = types.NewBool(true)
	// The first batch (every VM that exists) comes in update sets of at
	// most 100 objects, like vCenter's: it is complete only when a set is
	// no longer truncated.
	first := true
	seen := map[types.ManagedObjectReference]bool{}
	return property.WaitForUpdatesEx(ctx, pc, filter, func(updates []types.ObjectUpdate) bool {
		for _, u := range updates {
			if first {
				seen[u.Obj] = true
			}
			w.apply(ctx, u)
		}
		if first && !filter.Truncated {
			first = false
			for ref := range w.on {
				if !seen[ref] { // vanished while the watcher was not listening
					w.apply(ctx, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindLeave})
				}
			}
			select {
			case <-synced:
			default:
				close(synced)
			}
		}
		return false
	})
}

// vmTraversal reaches every VM under a folder: child folders and
// datacenters' VM folders, and the VMs of vApps.
func vmTraversal() []types.BaseSelectionSpec {
	folder := &types.SelectionSpec{Name: "folder"}
	return []types.BaseSelectionSpec{
		&types.TraversalSpec{SelectionSpec: types.SelectionSpec{Name: "folder"}, Type: "Folder", Path: "childEntity",
			SelectSet: []types.BaseSelectionSpec{folder, &types.SelectionSpec{Name: "datacenter"}, &types.SelectionSpec{Name: "vapp"}}},
		&types.TraversalSpec{SelectionSpec: types.SelectionSpec{Name: "datacenter"}, Type: "Datacenter", Path: "vmFolder",
			SelectSet: []types.BaseSelectionSpec{folder}},
		&types.TraversalSpec{SelectionSpec: types.SelectionSpec{Name: "vapp"}, Type: "VirtualApp", Path: "vm"},
	}
}

func (w *watcher) apply(ctx context.Context, u types.ObjectUpdate) {
	if u.Kind == types.ObjectUpdateKindLeave {
		vm, known := w.last[u.Obj]
		if !known {
			vm = VM{Ref: u.Obj}
		}
		if w.on[u.Obj] && w.hooks.OnPowerOff != nil {
			w.hooks.OnPowerOff(vm) // destroyed while on: only possible in the simulator, still a power-off
		}
		delete(w.on, u.Obj)
		delete(w.last, u.Obj)
		if w.hooks.OnDestroy != nil {
			w.hooks.OnDestroy(vm)
		}
		return
	}
	var state types.VirtualMachinePowerState
	changed := false
	for _, c := range u.ChangeSet {
		switch c.Name {
		case "runtime.powerState":
			state, changed = c.Val.(types.VirtualMachinePowerState), true
		case "runtime.host":
			w.moved(ctx, u.Obj, c.Val)
		}
	}
	if !changed {
		if _, known := w.last[u.Obj]; !known {
			w.last[u.Obj] = VM{Ref: u.Obj}
		}
		return
	}
	isOn := state == types.VirtualMachinePowerStatePoweredOn
	if isOn == w.on[u.Obj] {
		if _, known := w.last[u.Obj]; known {
			return
		}
	}
	vm, err := w.details(ctx, u.Obj)
	if errors.Is(err, errNoVM) {
		return // destroyed meanwhile: the leave update follows
	}
	if err != nil {
		w.logf("vcenter watcher: read vm %s: %v", u.Obj.Value, err)
		vm = w.last[u.Obj]
		vm.Ref = u.Obj
	}
	if prev, known := w.last[u.Obj]; known && prev.Host != "" && vm.Host != "" && prev.Host != vm.Host && w.hooks.OnMove != nil {
		// Moved before this power change was seen: the runtime.host
		// update that follows will find the host unchanged.
		w.hooks.OnMove(vm)
	}
	w.last[u.Obj] = vm
	wasOn := w.on[u.Obj]
	w.on[u.Obj] = isOn
	switch {
	case isOn && !wasOn && w.hooks.OnPowerOn != nil:
		w.hooks.OnPowerOn(vm)
	case !isOn && wasOn && w.hooks.OnPowerOff != nil:
		w.hooks.OnPowerOff(vm)
	}
}

// moved reports a known VM whose host changed.
func (w *watcher) moved(ctx context.Context, ref types.ManagedObjectReference, val any) {
	vm, known := w.last[ref]
	h, ok := val.(types.ManagedObjectReference)
	if p, isPtr := val.(*types.ManagedObjectReference); isPtr && p != nil {
		h, ok = *p, true
	}
	if !known || vm.Host == "" || !ok {
		return // a new VM: details() reads its host
	}
	name, err := w.hostName(ctx, h)
	if err != nil {
		w.logf("vcenter watcher: %v", err)
		return
	}
	if name == vm.Host {
		return
	}
	vm.Host = name
	w.last[ref] = vm
	if w.hooks.OnMove != nil {
		w.hooks.OnMove(vm)
	}
}

// details reads a VM's current name, host, extraConfig, custom values
// and vApp product.
func (w *watcher) details(ctx context.Context, ref types.ManagedObjectReference) (VM, error) {
	var mvm mo.VirtualMachine
	if err := property.DefaultCollector(w.c).RetrieveOne(ctx, ref, detailProps, &mvm); err != nil {
		if fault.Is(err, &types.ManagedObjectNotFound{}) {
			return VM{}, errNoVM
		}
		return VM{}, err
	}
	vm := VM{Ref: ref, Name: mvm.Name, ExtraConfig: map[string]string{}, CustomValues: map[string]string{}}
	if mvm.Guest != nil {
		vm.GuestIP = mvm.Guest.IpAddress
	}
	if h := mvm.Runtime.Host; h != nil {
		name, err := w.hostName(ctx, *h)
		if err != nil {
			return vm, err
		}
		vm.Host = name
	}
	if mvm.Config != nil {
		for _, o := range mvm.Config.ExtraConfig {
			if ov := o.GetOptionValue(); ov != nil {
				if s, ok := ov.Value.(string); ok {
					vm.ExtraConfig[ov.Key] = s
				}
			}
		}
		if mvm.Config.VAppConfig != nil {
			if info := mvm.Config.VAppConfig.GetVmConfigInfo(); info != nil && len(info.Product) > 0 {
				vm.Product = Product{Name: info.Product[0].Name, Version: info.Product[0].Version}
			}
		}
	}
	for _, cv := range mvm.CustomValue {
		s, ok := cv.(*types.CustomFieldStringValue)
		if !ok {
			continue
		}
		name, err := w.fieldName(ctx, s.Key)
		if err != nil {
			return vm, err
		}
		vm.CustomValues[name] = s.Value
	}
	return vm, nil
}

func (w *watcher) hostName(ctx context.Context, ref types.ManagedObjectReference) (string, error) {
	if name, ok := w.hosts[ref]; ok {
		return name, nil
	}
	var h mo.HostSystem
	if err := property.DefaultCollector(w.c).RetrieveOne(ctx, ref, []string{"name"}, &h); err != nil {
		return "", fmt.Errorf("read host %s: %w", ref.Value, err)
	}
	w.hosts[ref] = h.Name
	return h.Name, nil
}

// fieldName maps a custom field key to its name, reloading the
// definitions when a key is new (svm_deploy adds them at run time).
func (w *watcher) fieldName(ctx context.Context, key int32) (string, error) {
	if name, ok := w.fields[key]; ok {
		return name, nil
	}
	m, err := object.GetCustomFieldsManager(w.c)
	if err != nil {
		return "", err
	}
	defs, err := m.Field(ctx)
	if err != nil {
		return "", fmt.Errorf("read custom field definitions: %w", err)
	}
	for _, d := range defs {
		w.fields[d.Key] = d.Name
	}
	if name, ok := w.fields[key]; ok {
		return name, nil
	}
	return fmt.Sprint(key), nil // definition removed meanwhile: keep the value under its key
}
