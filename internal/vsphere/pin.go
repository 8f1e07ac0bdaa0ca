package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// An SVM protects only the VMs of its own host, so it must not move: the
// vendor's wizard assigns it to its host; deployed with hypervisor tools it
// needs a DRS VM override with automation disabled, an HA VM override with
// restart disabled and, where the host is not in an HA cluster, a host
// autostart entry (HA clusters ignore autostart). See
// https://support.kaspersky.com/KSVLA/5.2/en-US/145452.htm and VMware KB 326330.

// HARestartDisabled is the HA VM override restart priority that keeps HA
// from restarting a VM on another host.
const HARestartDisabled = string(types.ClusterDasVmSettingsRestartPriorityDisabled)

// Placement is where a VM runs and what holds it there.
type Placement struct {
	VM         string // VM name
	Host       string // ESXi host it runs on
	Cluster    string // "" for a standalone host
	PowerState string
	// Cluster services: with DRS on, vCenter may migrate the VM; with HA
	// on, it restarts the VM elsewhere after a host failure and autostart
	// never fires.
	DRS, HA bool
	// DRSOverride: a DRS VM override disables automation for the VM.
	DRSOverride bool
	// HAOverride: an HA VM override disables restart for the VM.
	HAOverride bool
	// AutoStart: the host's autostart entry powers the VM on with the host
	// (and autostart is enabled on the host).
	AutoStart bool

	vm, host    types.ManagedObjectReference
	cluster     *types.ManagedObjectReference
	autoStart   *types.ManagedObjectReference
	autoStartOn bool // host-wide autostart enabled
	drsEntry    bool // a DRS VM override exists (whatever it says)
	haEntry     bool
	haBare      bool // the HA override has no dasSettings (only the old restartPriority)
	autoEntry   bool
}

// Pinned reports whether nothing can move the VM off its host or leave it
// off after a host restart: each setting the host's cluster makes
// necessary is in place.
func (p Placement) Pinned() bool { return len(p.Missing()) == 0 }

// Missing names the pin settings that are not in place, in the order Pin
// sets them.
func (p Placement) Missing() []string {
	var out []string
	if p.cluster != nil && !p.DRSOverride {
		out = append(out, "DRS override")
	}
	if p.cluster != nil && !p.HAOverride {
		out = append(out, "HA override")
	}
	if p.NeedsAutoStart() && !p.AutoStart {
		out = append(out, "autostart")
	}
	return out
}

// NeedsAutoStart reports whether the host needs an autostart entry for the
// VM: always, except in an HA cluster, where autostart is not supported.
func (p Placement) NeedsAutoStart() bool { return !p.HA }

// Settings is the pin as diffs show it.
func (p Placement) Settings() map[string]any {
	s := map[string]any{"drs_automation_disabled": p.DRSOverride, "ha_restart_disabled": p.HAOverride}
	if p.NeedsAutoStart() {
		s["autostart"] = p.AutoStart
	}
	return s
}

// Want is Settings once pinned.
func (p Placement) Want() map[string]any {
	s := map[string]any{"drs_automation_disabled": true, "ha_restart_disabled": true}
	if p.NeedsAutoStart() {
		s["autostart"] = true
	}
	return s
}

// Placement reads where vm runs and how it is pinned there.
func (s *Session) Placement(ctx context.Context, vm *object.VirtualMachine) (Placement, error) {
	var p Placement
	var m mo.VirtualMachine
	pc := property.DefaultCollector(s.c)
	if err := pc.RetrieveOne(ctx, vm.Reference(), []string{"name", "runtime.host", "runtime.powerState"}, &m); err != nil {
		if isGone(err) {
			return p, &NotFoundError{Kind: "vm", Name: vmLabel(vm)}
		}
		return p, fmt.Errorf("read placement of vm %s: %w", vmLabel(vm), err)
	}
	p.VM, p.vm, p.PowerState = m.Name, vm.Reference(), string(m.Runtime.PowerState)
	if m.Runtime.Host == nil {
		return p, fmt.Errorf("read placement of vm %s: it has no host", m.Name)
	}
	p.host = *m.Runtime.Host
	if err := s.readHostPin(ctx, &p); err != nil {
		return p, fmt.Errorf("read placement of vm %s: %w", m.Name, err)
	}
	return p, nil
}

// HostPlacement reads what a VM placed on host would need to be pinned
// there (its cluster's DRS and HA, the host's autostart), for plans made
// before the VM exists; its Missing names every setting the host needs.
func (s *Session) HostPlacement(ctx context.Context, host *object.HostSystem) (Placement, error) {
	p := Placement{host: host.Reference()}
	if err := s.readHostPin(ctx, &p); err != nil {
		return p, fmt.Errorf("read host %s: %w", host.InventoryPath, err)
	}
	return p, nil
}

func (s *Session) readHostPin(ctx context.Context, p *Placement) error {
	pc := property.DefaultCollector(s.c)
	var h mo.HostSystem
	if err := pc.RetrieveOne(ctx, p.host, []string{"name", "parent", "configManager.autoStartManager"}, &h); err != nil {
		return fmt.Errorf("read host: %w", err)
	}
	p.Host, p.autoStart = h.Name, h.ConfigManager.AutoStartManager
	if h.Parent != nil && h.Parent.Type == "ClusterComputeResource" {
		var c mo.ClusterComputeResource
		if err := pc.RetrieveOne(ctx, *h.Parent, []string{"name", "configurationEx"}, &c); err != nil {
			return fmt.Errorf("read cluster of host %s: %w", h.Name, err)
		}
		p.Cluster, p.cluster = c.Name, h.Parent
		if cfg, ok := c.ConfigurationEx.(*types.ClusterConfigInfoEx); ok {
			readClusterPin(p, cfg)
		}
	}
	if p.autoStart != nil {
		var a mo.HostAutoStartManager
		err := pc.RetrieveOne(ctx, *p.autoStart, []string{"config"}, &a)
		switch {
		case isGone(err):
			p.autoStart = nil // a reference to a manager the host does not have
		case err != nil:
			return fmt.Errorf("read autostart of host %s: %w", h.Name, err)
		default:
			readAutoStart(p, a.Config)
		}
	}
	return nil
}

func readClusterPin(p *Placement, cfg *types.ClusterConfigInfoEx) {
	p.DRS = cfg.DrsConfig.Enabled != nil && *cfg.DrsConfig.Enabled
	p.HA = cfg.DasConfig.Enabled != nil && *cfg.DasConfig.Enabled
	for _, d := range cfg.DrsVmConfig {
		if d.Key == p.vm {
			p.drsEntry = true
			p.DRSOverride = d.Enabled != nil && !*d.Enabled
		}
	}
	for _, d := range cfg.DasVmConfig {
		if d.Key == p.vm {
			p.haEntry, p.haBare = true, d.DasSettings == nil
			p.HAOverride = (d.DasSettings != nil && d.DasSettings.RestartPriority == HARestartDisabled) ||
				d.RestartPriority == types.DasVmPriorityDisabled
		}
	}
}

func readAutoStart(p *Placement, cfg types.HostAutoStartManagerConfig) {
	p.autoStartOn = cfg.Defaults != nil && cfg.Defaults.Enabled != nil && *cfg.Defaults.Enabled
	for _, pi := range cfg.PowerInfo {
		if pi.Key == p.vm {
			p.autoEntry = true
			p.AutoStart = p.autoStartOn && pi.StartAction == "powerOn"
		}
	}
}

// Pin puts in place what Missing names for the VM p was read for.
func (s *Session) Pin(ctx context.Context, p Placement) error {
	if p.cluster != nil && (!p.DRSOverride || !p.HAOverride) {
		var spec types.ClusterConfigSpecEx
		if !p.DRSOverride {
			op := types.ArrayUpdateOperationAdd
			if p.drsEntry {
				op = types.ArrayUpdateOperationEdit
			}
			spec.DrsVmConfigSpec = []types.ClusterDrsVmConfigSpec{{
				ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: op},
				Info: &types.ClusterDrsVmConfigInfo{Key: p.vm, Enabled: types.NewBool(false),
					Behavior: types.DrsBehaviorManual},
			}}
		}
		if !p.HAOverride {
			op := types.ArrayUpdateOperationAdd
			if p.haEntry && !p.haBare {
				op = types.ArrayUpdateOperationEdit
			}
			if p.haBare {
				// An edit merges into dasSettings, which this entry lacks:
				// replace it (updates apply in order).
				spec.DasVmConfigSpec = append(spec.DasVmConfigSpec, types.ClusterDasVmConfigSpec{
					ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationRemove, RemoveKey: p.vm}})
			}
			spec.DasVmConfigSpec = append(spec.DasVmConfigSpec, types.ClusterDasVmConfigSpec{
				ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: op},
				Info: &types.ClusterDasVmConfigInfo{Key: p.vm,
					DasSettings: &types.ClusterDasVmSettings{RestartPriority: HARestartDisabled}},
			})
		}
		c := object.NewClusterComputeResource(s.c, *p.cluster)
		if err := runTask(ctx, "pin (cluster overrides)", p.VM, func(ctx context.Context) (*object.Task, error) {
			return c.Reconfigure(ctx, &spec, true)
		}); err != nil {
			return err
		}
	}
	if p.NeedsAutoStart() && !p.AutoStart {
		if p.autoStart == nil {
			return fmt.Errorf("pin vm %s: host %s has no autostart manager", p.VM, p.Host)
		}
		spec := types.HostAutoStartManagerConfig{PowerInfo: []types.AutoStartPowerInfo{{
			Key: p.vm, StartOrder: 1, StartDelay: -1, WaitForHeartbeat: types.AutoStartWaitHeartbeatSettingSystemDefault,
			StartAction: "powerOn", StopDelay: -1, StopAction: "systemDefault",
		}}}
		if !p.autoStartOn {
			// Entries do nothing while autostart is off on the host.
			spec.Defaults = &types.AutoStartDefaults{Enabled: types.NewBool(true)}
		}
		req := types.ReconfigureAutostart{This: *p.autoStart, Spec: spec}
		if _, err := methods.ReconfigureAutostart(ctx, s.c, &req); err != nil {
			return fmt.Errorf("pin vm %s: set autostart on host %s: %w", p.VM, p.Host, err)
		}
	}
	return nil
}

// Unpin removes the DRS and HA overrides and the autostart entry of the VM
// p was read for. Only the lab's tests need it (to play an SVM deployed
// without pinning); the modules never unpin.
func (s *Session) Unpin(ctx context.Context, p Placement) error {
	if p.cluster != nil && (p.drsEntry || p.haEntry) {
		var spec types.ClusterConfigSpecEx
		if p.drsEntry {
			spec.DrsVmConfigSpec = []types.ClusterDrsVmConfigSpec{{ArrayUpdateSpec: types.ArrayUpdateSpec{
				Operation: types.ArrayUpdateOperationRemove, RemoveKey: p.vm}}}
		}
		if p.haEntry {
			spec.DasVmConfigSpec = []types.ClusterDasVmConfigSpec{{ArrayUpdateSpec: types.ArrayUpdateSpec{
				Operation: types.ArrayUpdateOperationRemove, RemoveKey: p.vm}}}
		}
		c := object.NewClusterComputeResource(s.c, *p.cluster)
		if err := runTask(ctx, "unpin", p.VM, func(ctx context.Context) (*object.Task, error) {
			return c.Reconfigure(ctx, &spec, true)
		}); err != nil {
			return err
		}
	}
	return nil
}

// Migrate moves a VM to host (vMotion inside its cluster), powered on or
// off; a VM already there is left alone.
func (s *Session) Migrate(ctx context.Context, vm *object.VirtualMachine, host *object.HostSystem) error {
	ref := host.Reference()
	return runTask(ctx, "migrate", vmLabel(vm), func(ctx context.Context) (*object.Task, error) {
		return vm.Relocate(ctx, types.VirtualMachineRelocateSpec{Host: &ref}, types.VirtualMachineMovePriorityHighPriority)
	})
}

// HostCapacity is what a host has for one more VM.
type HostCapacity struct {
	Host          string
	MemoryMB      int64 // physical memory
	UsedMemoryMB  int64 // configured memory of its powered-on VMs
	CPUs          int   // logical processors
	DatastoreFree int64 // bytes free on the datastore asked about
	Datastore     string
}

// FreeMemoryMB is the memory not promised to powered-on VMs.
func (c HostCapacity) FreeMemoryMB() int64 { return c.MemoryMB - c.UsedMemoryMB }

// Capacity reads a host's memory and processors, the memory its powered-on
// VMs are configured with, and the free space of ds.
func (s *Session) Capacity(ctx context.Context, host *object.HostSystem, ds *object.Datastore) (HostCapacity, error) {
	var c HostCapacity
	pc := property.DefaultCollector(s.c)
	var h mo.HostSystem
	if err := pc.RetrieveOne(ctx, host.Reference(), []string{"name", "summary.hardware"}, &h); err != nil {
		return c, fmt.Errorf("read capacity of host %s: %w", host.InventoryPath, err)
	}
	c.Host = h.Name
	if hw := h.Summary.Hardware; hw != nil {
		c.MemoryMB, c.CPUs = hw.MemorySize>>20, int(hw.NumCpuThreads)
	}
	// runtime.host, not host.vm: it is what vMotion updates first.
	var vms []mo.VirtualMachine
	if err := s.allVMs(ctx, &vms, []string{"runtime.host", "runtime.powerState", "config.hardware.memoryMB"}); err != nil {
		return c, fmt.Errorf("read capacity of host %s: %w", h.Name, err)
	}
	for _, vm := range vms {
		if vm.Runtime.Host != nil && *vm.Runtime.Host == host.Reference() &&
			vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn && vm.Config != nil {
			c.UsedMemoryMB += int64(vm.Config.Hardware.MemoryMB)
		}
	}
	if ds != nil {
		var d mo.Datastore
		if err := pc.RetrieveOne(ctx, ds.Reference(), []string{"name", "summary.freeSpace"}, &d); err != nil {
			return c, fmt.Errorf("read free space of datastore %s: %w", ds.InventoryPath, err)
		}
		c.Datastore, c.DatastoreFree = d.Name, d.Summary.FreeSpace
	}
	return c, nil
}

// allVMs reads props of every VM under the root folder.
func (s *Session) allVMs(ctx context.Context, dst *[]mo.VirtualMachine, props []string) error {
	cv, err := view.NewManager(s.c).CreateContainerView(ctx, s.c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return err
	}
	defer func() { _ = cv.Destroy(context.Background()) }() // the session ends soon anyway
	return cv.Retrieve(ctx, []string{"VirtualMachine"}, props, dst)
}

// Placements reads the placement of several VMs (by MoRef value) in four
// property-collector calls whatever their number: the VMs, their hosts,
// the hosts' clusters and the hosts' autostart configurations. VMs that
// are gone are left out.
func (s *Session) Placements(ctx context.Context, moids []string) (map[string]Placement, error) {
	out := map[string]Placement{}
	if len(moids) == 0 {
		return out, nil
	}
	pc := property.DefaultCollector(s.c)
	refs := make([]types.ManagedObjectReference, len(moids))
	for i, id := range moids {
		refs[i] = types.ManagedObjectReference{Type: "VirtualMachine", Value: id}
	}
	var vms []mo.VirtualMachine
	if err := pc.Retrieve(ctx, refs, []string{"name", "runtime.host", "runtime.powerState"}, &vms); err != nil && !isGone(err) {
		return nil, fmt.Errorf("read placement of SVMs: %w", err)
	}
	hostSet := map[types.ManagedObjectReference]bool{}
	for _, vm := range vms {
		if vm.Runtime.Host != nil {
			hostSet[*vm.Runtime.Host] = true
		}
	}
	var hosts []mo.HostSystem
	if err := retrieveSet(ctx, pc, hostSet, []string{"name", "parent", "configManager.autoStartManager"}, &hosts); err != nil {
		return nil, fmt.Errorf("read hosts of SVMs: %w", err)
	}
	clusterSet, autoSet := map[types.ManagedObjectReference]bool{}, map[types.ManagedObjectReference]bool{}
	for _, h := range hosts {
		if h.Parent != nil && h.Parent.Type == "ClusterComputeResource" {
			clusterSet[*h.Parent] = true
		}
		if a := h.ConfigManager.AutoStartManager; a != nil {
			autoSet[*a] = true
		}
	}
	var clusters []mo.ClusterComputeResource
	if err := retrieveSet(ctx, pc, clusterSet, []string{"name", "configurationEx"}, &clusters); err != nil {
		return nil, fmt.Errorf("read clusters of SVMs: %w", err)
	}
	var autos []mo.HostAutoStartManager
	err := retrieveSet(ctx, pc, autoSet, []string{"config"}, &autos)
	if isGone(err) {
		// Some host references a manager it does not have: read them one
		// by one and leave those out.
		autos, err = nil, nil
		for ref := range autoSet {
			var a mo.HostAutoStartManager
			if e := pc.RetrieveOne(ctx, ref, []string{"config"}, &a); e == nil {
				autos = append(autos, a)
			} else if !isGone(e) {
				err = e
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read autostart of SVM hosts: %w", err)
	}
	known := map[types.ManagedObjectReference]bool{}
	for _, a := range autos {
		known[a.Self] = true
	}
	hostBy := map[types.ManagedObjectReference]mo.HostSystem{}
	for _, h := range hosts {
		hostBy[h.Self] = h
	}
	clusterBy := map[types.ManagedObjectReference]mo.ClusterComputeResource{}
	for _, c := range clusters {
		clusterBy[c.Self] = c
	}
	autoBy := map[types.ManagedObjectReference]types.HostAutoStartManagerConfig{}
	for _, a := range autos {
		autoBy[a.Self] = a.Config
	}
	for _, vm := range vms {
		p := Placement{VM: vm.Name, vm: vm.Self, PowerState: string(vm.Runtime.PowerState)}
		if vm.Runtime.Host != nil {
			h := hostBy[*vm.Runtime.Host]
			p.host, p.Host, p.autoStart = h.Self, h.Name, h.ConfigManager.AutoStartManager
			if h.Parent != nil {
				if c, ok := clusterBy[*h.Parent]; ok {
					p.Cluster, p.cluster = c.Name, h.Parent
					if cfg, ok := c.ConfigurationEx.(*types.ClusterConfigInfoEx); ok {
						readClusterPin(&p, cfg)
					}
				}
			}
			if p.autoStart != nil && !known[*p.autoStart] {
				p.autoStart = nil
			}
			if p.autoStart != nil {
				readAutoStart(&p, autoBy[*p.autoStart])
			}
		}
		out[vm.Self.Value] = p
	}
	return out, nil
}

func retrieveSet(ctx context.Context, pc *property.Collector, set map[types.ManagedObjectReference]bool, props []string, dst any) error {
	if len(set) == 0 {
		return nil
	}
	refs := make([]types.ManagedObjectReference, 0, len(set))
	for r := range set {
		refs = append(refs, r)
	}
	return pc.Retrieve(ctx, refs, props, dst)
}
