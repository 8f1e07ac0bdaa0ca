package vcenter

import (
	"context"
	"fmt"
	"sort"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Capacity is what one ESXi host offers. Zero fields take the defaults
// of a mid-size production host.
type Capacity struct {
	MemoryMB         int64 // physical memory; default 262144 (256 GiB)
	CPUs             int   // logical processors; default 32
	LocalDatastoreGB int64 // size (and free space) of its local datastore; default 1024
}

func (c Capacity) orDefault(d Capacity) Capacity {
	if c.MemoryMB == 0 {
		c.MemoryMB = d.MemoryMB
	}
	if c.CPUs == 0 {
		c.CPUs = d.CPUs
	}
	if c.LocalDatastoreGB == 0 {
		c.LocalDatastoreGB = d.LocalDatastoreGB
	}
	return c
}

var defaultCapacity = Capacity{MemoryMB: 256 << 10, CPUs: 32, LocalDatastoreGB: 1024}

// simCtx is a context for in-process changes to the model: its own
// identity, so the simulator's object locks exclude SOAP handlers.
func (v *VCenter) simCtx() *simulator.Context {
	c := *v.model.Service.Context
	c.Context = context.Background()
	return &c
}

// clusterServices turns on DRS (fully automated) and, unless NoHA, vSphere
// HA on the seeded cluster, as on a production cluster.
func (s *seeder) clusterServices(ctx context.Context, cluster *object.ClusterComputeResource) error {
	spec := &types.ClusterConfigSpecEx{
		DrsConfig: &types.ClusterDrsConfigInfo{Enabled: types.NewBool(true), DefaultVmBehavior: types.DrsBehaviorFullyAutomated},
		DasConfig: &types.ClusterDasConfigInfo{Enabled: types.NewBool(!s.cfg.NoHA)},
	}
	task, err := cluster.Reconfigure(ctx, spec, true)
	if err != nil {
		return err
	}
	_, err = s.await(ctx, task)
	return err
}

// pinSeeded gives the seeded SVMs what the vendor's wizard gives them: a
// DRS VM override (automation disabled) and an HA VM override (restart
// disabled), so they stay on their hosts.
func (s *seeder) pinSeeded(ctx context.Context, cluster *object.ClusterComputeResource, svms []*object.VirtualMachine) error {
	var spec types.ClusterConfigSpecEx
	for _, vm := range svms {
		spec.DrsVmConfigSpec = append(spec.DrsVmConfigSpec, types.ClusterDrsVmConfigSpec{
			ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
			Info:            &types.ClusterDrsVmConfigInfo{Key: vm.Reference(), Enabled: types.NewBool(false), Behavior: types.DrsBehaviorManual},
		})
		spec.DasVmConfigSpec = append(spec.DasVmConfigSpec, types.ClusterDasVmConfigSpec{
			ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
			Info: &types.ClusterDasVmConfigInfo{Key: vm.Reference(),
				DasSettings: &types.ClusterDasVmSettings{RestartPriority: string(types.ClusterDasVmSettingsRestartPriorityDisabled)}},
		})
	}
	task, err := cluster.Reconfigure(ctx, &spec, true)
	if err != nil {
		return err
	}
	_, err = s.await(ctx, task)
	return err
}

// holdProtected gives the protected VMs DRS VM overrides that disable DRS
// for them (Config.ProtectedVMsStay), as a site that keeps VMs on their
// hosts would: vCenter then says they stay, and the lab's DRS leaves them.
func (s *seeder) holdProtected(ctx context.Context, vms []*object.VirtualMachine) error {
	var spec types.ClusterConfigSpecEx
	for _, vm := range vms {
		spec.DrsVmConfigSpec = append(spec.DrsVmConfigSpec, types.ClusterDrsVmConfigSpec{
			ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
			Info:            &types.ClusterDrsVmConfigInfo{Key: vm.Reference(), Enabled: types.NewBool(false)},
		})
	}
	task, err := s.clusterObj.Reconfigure(ctx, &spec, true)
	if err != nil {
		return err
	}
	_, err = s.await(ctx, task)
	return err
}

// setCapacity gives every host its memory, processors and local datastore
// size. The simulator has no API for hardware, so this edits its model.
func (v *VCenter) setCapacity() {
	ctx := v.simCtx()
	m := v.model.Map()
	for _, e := range m.All("HostSystem") {
		h := e.(*simulator.HostSystem)
		c := v.cfg.HostCapacity[h.Name].orDefault(v.cfg.Capacity.orDefault(defaultCapacity))
		ctx.WithLock(h, func() {
			h.Summary.Hardware.MemorySize = c.MemoryMB << 20
			h.Summary.Hardware.NumCpuThreads = int16(c.CPUs)
			h.Summary.Hardware.NumCpuCores = int16(max(1, c.CPUs/2))
			if h.Hardware != nil {
				h.Hardware.MemorySize = c.MemoryMB << 20
			}
		})
		for _, ref := range h.Datastore {
			ds, ok := m.Get(ref).(*simulator.Datastore)
			if !ok || ds.Name != LocalDatastoreName(h.Name) {
				continue
			}
			size := c.LocalDatastoreGB << 30
			ctx.WithLock(ds, func() {
				ctx.Update(ds, []types.PropertyChange{
					{Name: "summary.capacity", Val: size}, {Name: "summary.freeSpace", Val: size}})
				if info := ds.Info.GetDatastoreInfo(); info != nil {
					info.FreeSpace, info.MaxFileSize = size, size
				}
			})
		}
	}
}

// autoStartManager is a host's HostAutoStartManager, which the simulator
// lacks: it keeps the configuration ReconfigureAutostart sets, and the lab
// reads it when a host leaves maintenance mode.
type autoStartManager struct {
	mo.HostAutoStartManager
}

// ReconfigureAutostart merges spec into the configuration as ESXi does:
// defaults field by field, power info by VM (start action "none" with
// start order -1 removes an entry).
func (a *autoStartManager) ReconfigureAutostart(ctx *simulator.Context, req *types.ReconfigureAutostart) soap.HasFault {
	body := &methods.ReconfigureAutostartBody{}
	if d := req.Spec.Defaults; d != nil {
		if a.Config.Defaults == nil {
			a.Config.Defaults = &types.AutoStartDefaults{}
		}
		if d.Enabled != nil {
			a.Config.Defaults.Enabled = d.Enabled
		}
	}
	for _, pi := range req.Spec.PowerInfo {
		if ctx.Map.Get(pi.Key) == nil {
			body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: pi.Key})
			return body
		}
		kept := a.Config.PowerInfo[:0]
		for _, old := range a.Config.PowerInfo {
			if old.Key != pi.Key {
				kept = append(kept, old)
			}
		}
		a.Config.PowerInfo = kept
		if pi.StartAction != "none" || pi.StartOrder != -1 {
			a.Config.PowerInfo = append(a.Config.PowerInfo, pi)
		}
	}
	body.Res = &types.ReconfigureAutostartResponse{}
	return body
}

// addAutoStartManagers gives every host its own autostart manager.
func (v *VCenter) addAutoStartManagers() {
	ctx := v.simCtx()
	m := v.model.Map()
	for _, e := range m.All("HostSystem") {
		h := e.(*simulator.HostSystem)
		a := &autoStartManager{}
		a.Self = types.ManagedObjectReference{Type: "HostAutoStartManager", Value: "autostart-" + h.Self.Value}
		ref := m.Put(a).Reference()
		ctx.WithLock(h, func() { h.ConfigManager.AutoStartManager = &ref })
	}
}

// AutoStartVMs returns the VMs host's autostart powers on with the host:
// none while autostart is off on the host.
func (v *VCenter) AutoStartVMs(host string) []types.ManagedObjectReference {
	ctx := v.simCtx()
	h := v.hostObject(host)
	if h == nil || h.ConfigManager.AutoStartManager == nil {
		return nil
	}
	a, ok := v.model.Map().Get(*h.ConfigManager.AutoStartManager).(*autoStartManager)
	if !ok {
		return nil
	}
	var out []types.ManagedObjectReference
	ctx.WithLock(a, func() {
		if d := a.Config.Defaults; d == nil || d.Enabled == nil || !*d.Enabled {
			return
		}
		info := append([]types.AutoStartPowerInfo(nil), a.Config.PowerInfo...)
		sort.SliceStable(info, func(i, j int) bool { return info[i].StartOrder < info[j].StartOrder })
		for _, pi := range info {
			if pi.StartAction == "powerOn" {
				out = append(out, pi.Key)
			}
		}
	})
	return out
}

func (v *VCenter) hostObject(name string) *simulator.HostSystem {
	for _, e := range v.model.Map().All("HostSystem") {
		if h := e.(*simulator.HostSystem); h.Name == name {
			return h
		}
	}
	return nil
}

func (v *VCenter) clusterObject() *simulator.ClusterComputeResource {
	for _, e := range v.model.Map().All("ClusterComputeResource") {
		return e.(*simulator.ClusterComputeResource)
	}
	return nil
}

// VMOverrides tells whether a DRS VM override disables automation for vm
// and whether an HA VM override disables its restart.
func (v *VCenter) VMOverrides(vm types.ManagedObjectReference) (drsDisabled, haDisabled bool) {
	c := v.clusterObject()
	if c == nil {
		return false, false
	}
	v.simCtx().WithLock(c, func() {
		cfg, ok := c.ConfigurationEx.(*types.ClusterConfigInfoEx)
		if !ok {
			return
		}
		for _, d := range cfg.DrsVmConfig {
			if d.Key == vm {
				drsDisabled = d.Enabled != nil && !*d.Enabled
			}
		}
		for _, d := range cfg.DasVmConfig {
			if d.Key == vm && d.DasSettings != nil {
				haDisabled = d.DasSettings.RestartPriority == string(types.ClusterDasVmSettingsRestartPriorityDisabled)
			}
		}
	})
	return drsDisabled, haDisabled
}

// HAEnabled reports whether vSphere HA is on in the cluster.
func (v *VCenter) HAEnabled() bool { return !v.cfg.NoHA }

// HostState is one host as the lab's cluster services see it.
type HostState struct {
	Name         string
	Ref          types.ManagedObjectReference
	Maintenance  bool
	Connected    bool
	MemoryMB     int64
	UsedMemoryMB int64 // powered-on VMs' configured memory
	Datastores   []types.ManagedObjectReference
}

// ClusterVM is one VM as the lab's cluster services see it.
type ClusterVM struct {
	Ref      types.ManagedObjectReference
	Name     string
	Host     string
	On       bool
	MemoryMB int64
	// Datastores holding its files: a migration keeps them, so the target
	// host must see every one (vCenter refuses otherwise).
	Datastores []types.ManagedObjectReference
}

// Sees reports whether host has every datastore of vm.
func (h HostState) Sees(vm ClusterVM) bool {
	for _, d := range vm.Datastores {
		found := false
		for _, hd := range h.Datastores {
			found = found || hd == d
		}
		if !found {
			return false
		}
	}
	return true
}

// Cluster reads the hosts (in inventory order) and VMs of the cluster.
func (v *VCenter) Cluster(ctx context.Context) ([]HostState, []ClusterVM, error) {
	c := v.client.Client
	m := view.NewManager(c)
	cv, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"HostSystem", "VirtualMachine"}, true)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = cv.Destroy(context.Background()) }() // best effort
	var hosts []mo.HostSystem
	if err := cv.Retrieve(ctx, []string{"HostSystem"}, []string{"name", "runtime", "summary.hardware", "datastore"}, &hosts); err != nil {
		return nil, nil, fmt.Errorf("read hosts: %w", err)
	}
	var vms []mo.VirtualMachine
	if err := cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "runtime.host", "runtime.powerState", "config.hardware.memoryMB", "datastore"}, &vms); err != nil {
		return nil, nil, fmt.Errorf("read vms: %w", err)
	}
	names := map[types.ManagedObjectReference]int{}
	out := make([]HostState, len(hosts))
	for i, h := range hosts {
		names[h.Self] = i
		out[i] = HostState{Name: h.Name, Ref: h.Self, Maintenance: h.Runtime.InMaintenanceMode,
			Connected: h.Runtime.ConnectionState == types.HostSystemConnectionStateConnected, Datastores: h.Datastore}
		if h.Summary.Hardware != nil {
			out[i].MemoryMB = h.Summary.Hardware.MemorySize >> 20
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := range out {
		names[out[i].Ref] = i
	}
	var cvms []ClusterVM
	for _, vm := range vms {
		x := ClusterVM{Ref: vm.Self, Name: vm.Name, On: vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn,
			Datastores: vm.Datastore}
		if vm.Config != nil {
			x.MemoryMB = int64(vm.Config.Hardware.MemoryMB)
		}
		if vm.Runtime.Host != nil {
			if i, ok := names[*vm.Runtime.Host]; ok {
				x.Host = out[i].Name
				if x.On {
					out[i].UsedMemoryMB += x.MemoryMB
				}
			}
		}
		cvms = append(cvms, x)
	}
	sort.Slice(cvms, func(i, j int) bool { return cvms[i].Name < cvms[j].Name })
	return out, cvms, nil
}

// Migrate moves vm to host through the API (vMotion).
func (v *VCenter) Migrate(ctx context.Context, vm types.ManagedObjectReference, host types.ManagedObjectReference) error {
	task, err := object.NewVirtualMachine(v.client.Client, vm).Relocate(ctx,
		types.VirtualMachineRelocateSpec{Host: &host}, types.VirtualMachineMovePriorityHighPriority)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", vm.Value, err)
	}
	return nil
}

// Power powers vm on or off through the API.
func (v *VCenter) Power(ctx context.Context, vm types.ManagedObjectReference, on bool) error {
	o := object.NewVirtualMachine(v.client.Client, vm)
	start := o.PowerOff
	if on {
		start = o.PowerOn
	}
	task, err := start(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("power %s: %w", vm.Value, err)
	}
	return nil
}

// SetMaintenance puts host into maintenance mode or takes it out.
func (v *VCenter) SetMaintenance(ctx context.Context, host types.ManagedObjectReference, on bool) error {
	h := object.NewHostSystem(v.client.Client, host)
	var task *object.Task
	var err error
	if on {
		task, err = h.EnterMaintenanceMode(ctx, 0, false, nil)
	} else {
		task, err = h.ExitMaintenanceMode(ctx, 0)
	}
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("maintenance mode of %s: %w", host.Value, err)
	}
	return nil
}

// SetConnected marks host as responding or not (a failed host), which the
// simulator has no API for.
func (v *VCenter) SetConnected(host string, connected bool) error {
	h := v.hostObject(host)
	if h == nil {
		return fmt.Errorf("no host %s", host)
	}
	state := types.HostSystemConnectionStateNotResponding
	if connected {
		state = types.HostSystemConnectionStateConnected
	}
	ctx := v.simCtx()
	ctx.WithLock(h, func() {
		ctx.Update(h, []types.PropertyChange{{Name: "runtime.connectionState", Val: state}})
	})
	return nil
}
