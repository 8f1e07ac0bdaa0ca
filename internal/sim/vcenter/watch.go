package vcenter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmware/govmomi/event"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
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
// Why the API and not the simulator's registry handlers: handlers run
// inside the simulator's locks (calling back deadlocks) and see only
// internal objects, while events and property reads are what a real
// vCenter client uses. The simulator does not publish every change, though:
// keyed extraConfig changes and SetField custom values never reach a
// collector. So the watcher only learns *when* a VM was powered on, off,
// moved or destroyed, and the VM's details are read afresh at that moment.
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
	early  map[types.ManagedObjectReference]int // power-ons read before their event
}

// watch follows VM power state until ctx ends, closing synced after the
// first batch (the VMs that exist at start). A failed wait is retried
// with fresh collectors; the power-state cache makes the retry report
// only what changed in between.
func (v *VCenter) watch(ctx context.Context, synced chan struct{}) error {
	w := &watcher{c: v.client.Client, hooks: v.cfg.Hooks, logf: v.cfg.Logf,
		on: map[types.ManagedObjectReference]bool{}, last: map[types.ManagedObjectReference]VM{},
		hosts: map[types.ManagedObjectReference]string{}, fields: map[int32]string{},
		early: map[types.ManagedObjectReference]int{}}
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
	cv, err := view.NewManager(w.c).CreateContainerView(ctx, w.c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return fmt.Errorf("create container view: %w", err)
	}
	defer func() { _ = cv.Destroy(context.Background()) }() // best effort: the session ends with the lab
	ec, err := event.NewManager(w.c).CreateCollectorForEvents(ctx, types.EventFilterSpec{EventTypeId: vmEvents})
	if err != nil {
		return fmt.Errorf("create event collector: %w", err)
	}
	defer func() { _ = ec.Destroy(context.Background()) }()
	if err := ec.SetPageSize(ctx, 1); err != nil { // the page is only a signal
		return fmt.Errorf("event collector page size: %w", err)
	}
	if _, err := w.readEvents(ctx, ec); err != nil { // history: the first poll reads the state
		return err
	}
	pc, err := property.DefaultCollector(w.c).Create(ctx)
	if err != nil {
		return fmt.Errorf("create property collector: %w", err)
	}
	defer func() { _ = pc.Destroy(context.Background()) }()
	filter := new(property.WaitFilter).Add(ec.Reference(), "EventHistoryCollector", []string{"latestPage"})
	if _, err := pc.CreateFilter(ctx, filter.CreateFilter); err != nil {
		return fmt.Errorf("create filter: %w", err)
	}

	polled, _, err := w.poll(ctx, cv, nil, nil, true)
	if err != nil {
		return err
	}
	select {
	case <-synced:
	default:
		close(synced)
	}
	version := ""
	var pending []vmEvent // events whose change the last read did not show yet
	var readTime time.Duration
	for {
		if len(pending) == 0 {
			wait := int32(max(safetyPoll, 20*readTime) / time.Second)
			set, err := pc.WaitForUpdates(ctx, version, &types.WaitOptions{MaxWaitSeconds: &wait})
			if err != nil {
				return fmt.Errorf("wait for vm events: %w", err)
			}
			if set != nil {
				version = set.Version
			}
		}
		start := time.Now()
		evs, err := w.readEvents(ctx, ec)
		if err != nil {
			return err
		}
		if polled, pending, err = w.poll(ctx, cv, polled, append(pending, evs...), false); err != nil {
			return err
		}
		// Events come in bursts (a wave of imports): one read of every VM
		// answers a burst, and the reads take at most a quarter of the time.
		readTime = time.Since(start)
		pause := max(minPollGap, 3*readTime)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
	}
}

// Why events and a read of the VMs, not a property filter over them: the
// simulator answers every change of any object by collecting every object
// of every filter (at 64 hosts the lab's own watcher took half the lab's
// CPU), and a filter that traverses a container view deadlocks in the
// pinned govmomi v0.56.0 (vmware/govmomi#4109: the filter, then the view,
// in WaitForUpdatesEx; the view, then the filter, when a VM is added). A
// filter on an event collector's one-event page is cheap and never
// traverses anything; each burst of VM events then costs one read of the
// VMs, through a container view without a filter.
//
// Only events that come with a change a read shows (power state, host,
// existence): an event whose change does not show yet is read again
// shortly, so one that never shows one (a reset, a storage-only
// relocation) would only cost reads.
var vmEvents = []string{"VmPoweredOnEvent", "VmPoweredOffEvent", "VmSuspendedEvent", "VmRemovedEvent",
	"VmMigratedEvent", "VmRestartedOnAlternateHostEvent"}

const (
	// safetyPoll reads the VMs even without an event: a change the
	// simulator posts no event for is seen this late. A large lab reads
	// less often (at most a twentieth of the time goes to these reads),
	// so an idle lab does not load the benchmarks run against it.
	safetyPoll = 2 * time.Second
	minPollGap = 20 * time.Millisecond
	// pendingFor: how long an event may wait for its change to show
	// (the simulator posts some events just before the change).
	pendingFor = 2 * time.Second
)

// vmEvent is one VM event, in the order vCenter posted it.
type vmEvent struct {
	vm      types.ManagedObjectReference
	powerOn bool
	at      time.Time
}

// readEvents drains the collector: the VM events since the last read, in order.
func (w *watcher) readEvents(ctx context.Context, ec *event.HistoryCollector) ([]vmEvent, error) {
	var out []vmEvent
	for {
		evs, err := ec.ReadNextEvents(ctx, 1000)
		if err != nil {
			return nil, fmt.Errorf("read vm events: %w", err)
		}
		if len(evs) == 0 {
			return out, nil
		}
		now := time.Now()
		for _, e := range evs {
			if vm := e.GetEvent().Vm; vm != nil {
				_, on := e.(*types.VmPoweredOnEvent)
				out = append(out, vmEvent{vm: vm.Vm, powerOn: on, at: now})
			}
		}
	}
}

type polledVM struct {
	name  string
	state types.VirtualMachinePowerState
	host  types.ManagedObjectReference
}

// poll reads every VM and hands apply what changed since prev, as the
// updates a property filter would have sent: first the VMs of evs in the
// order of their last event, so that the lab sees the moments between
// two changes (an SVM moved away, then the VM it protected), then any
// other change. It returns the events whose change the read does not show
// yet, to be read again shortly.
func (w *watcher) poll(ctx context.Context, cv *view.ContainerView, prev map[types.ManagedObjectReference]polledVM,
	evs []vmEvent, first bool) (map[types.ManagedObjectReference]polledVM, []vmEvent, error) {
	var vms []mo.VirtualMachine
	if err := cv.Retrieve(ctx, []string{"VirtualMachine"}, watchedProps, &vms); err != nil {
		return prev, evs, fmt.Errorf("read vms: %w", err)
	}
	now := make(map[types.ManagedObjectReference]polledVM, len(vms))
	for _, vm := range vms {
		p := polledVM{name: vm.Name, state: vm.Runtime.PowerState}
		if vm.Runtime.Host != nil {
			p.host = *vm.Runtime.Host
		}
		now[vm.Self] = p
	}
	last := map[types.ManagedObjectReference]int{}
	onEvents := map[types.ManagedObjectReference]int{}
	for i, e := range evs {
		last[e.vm] = i
		if e.powerOn {
			onEvents[e.vm]++
		}
	}
	var pending []vmEvent
	done := map[types.ManagedObjectReference]bool{}
	for i, e := range evs {
		if last[e.vm] != i {
			continue
		}
		done[e.vm] = true
		// Power-ons the reads saw before their event (the simulator posts
		// it just before the change) explain that many power-on events;
		// one more, with the VM on at both reads, is a power cycle.
		was, known := prev[e.vm]
		p, exists := now[e.vm]
		on := types.VirtualMachinePowerStatePoweredOn
		turnedOn := known && exists && was.state != on && p.state == on
		rest := onEvents[e.vm] - w.early[e.vm] - b2i(turnedOn)
		w.early[e.vm] = max(0, -rest)
		cycle := rest > 0 && known && exists && was.state == on && p.state == on
		seen := w.changed(ctx, e.vm, prev, now, cycle)
		explained := seen || (onEvents[e.vm] > 0 && rest <= 0)
		if !explained && time.Since(e.at) < pendingFor {
			for _, pe := range evs {
				if pe.vm == e.vm {
					pending = append(pending, pe)
				}
			}
		}
	}
	for ref, p := range now {
		if done[ref] {
			continue
		}
		if was, known := prev[ref]; known && was.state != types.VirtualMachinePowerStatePoweredOn && p.state == types.VirtualMachinePowerStatePoweredOn {
			w.early[ref]++ // its event comes with the next read
		}
		w.changed(ctx, ref, prev, now, false)
	}
	for ref := range prev {
		if _, ok := now[ref]; !ok && !done[ref] {
			delete(w.early, ref)
			w.apply(ctx, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindLeave})
		}
	}
	if first { // a retry after an error: what vanished while the watcher was not listening
		for ref := range w.on {
			if _, ok := now[ref]; !ok {
				w.apply(ctx, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindLeave})
			}
		}
	}
	return now, pending, nil
}

// changed hands apply the change of one VM between two reads and says
// whether there was one. A VM powered on (cycled) that was on and is on
// went through a power cycle in between.
func (w *watcher) changed(ctx context.Context, ref types.ManagedObjectReference, prev, now map[types.ManagedObjectReference]polledVM, cycled bool) bool {
	was, known := prev[ref]
	p, exists := now[ref]
	on := types.VirtualMachinePowerStatePoweredOn
	switch {
	case !exists && known:
		delete(w.early, ref)
		w.apply(ctx, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindLeave})
	case !exists:
		return false
	case !known:
		w.apply(ctx, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindEnter, ChangeSet: []types.PropertyChange{
			{Name: "name", Val: p.name}, {Name: "runtime.powerState", Val: p.state}, {Name: "runtime.host", Val: p.host}}})
	case cycled && was.state == on && p.state == on:
		w.apply(ctx, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindModify, ChangeSet: []types.PropertyChange{
			{Name: "runtime.powerState", Val: types.VirtualMachinePowerStatePoweredOff}}})
		w.apply(ctx, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindModify, ChangeSet: []types.PropertyChange{
			{Name: "runtime.host", Val: p.host}, {Name: "runtime.powerState", Val: p.state}}})
	case p.state != was.state || p.host != was.host:
		var cs []types.PropertyChange
		if p.host != was.host {
			cs = append(cs, types.PropertyChange{Name: "runtime.host", Val: p.host})
		}
		if p.state != was.state {
			cs = append(cs, types.PropertyChange{Name: "runtime.powerState", Val: p.state})
		}
		w.apply(ctx, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindModify, ChangeSet: cs})
	default:
		return false
	}
	return true
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

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
