package vsphere

import (
	"context"
	"fmt"
	"sort"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// What a deployment (svm_deploy) reads about where it puts a VM and about
// the VMs of the name it deploys, as typed values: the module decides from
// names, versions and marks and hands the objects back to this package.

// Target is where a deployment puts a VM, found once: the datacenter, the
// ESXi host and, for an import, the datastore, named as vCenter names them
// (the options may give inventory paths or MoRefs).
type Target struct {
	Host      string // the ESXi host's name
	Datastore string // the datastore's name; "" unless TargetSpec.Import

	s    *Session
	dc   *object.Datacenter
	host *object.HostSystem
	ds   *object.Datastore
}

// TargetSpec names a Target as a user gives it (name, path or MoRef).
type TargetSpec struct {
	Datacenter string // "" means the only one there is
	Host       string
	// Import also finds Datastore, Folder ("" the datacenter's vm folder)
	// and ResourcePool ("" the root pool of the host's cluster), so a check
	// run fails where the import would.
	Import                          bool
	Datastore, Folder, ResourcePool string
}

// FindTarget finds the objects of spec.
func (s *Session) FindTarget(ctx context.Context, spec TargetSpec) (Target, error) {
	t := Target{s: s}
	var err error
	if t.dc, err = s.Datacenter(ctx, spec.Datacenter); err != nil {
		return t, err
	}
	if t.host, err = s.Host(ctx, t.dc, spec.Host); err != nil {
		return t, err
	}
	if t.Host, err = s.name(ctx, t.host.Reference()); err != nil {
		return t, fmt.Errorf("read host %s: %w", spec.Host, err)
	}
	if !spec.Import {
		return t, nil
	}
	if t.ds, err = s.Datastore(ctx, t.dc, spec.Datastore); err != nil {
		return t, err
	}
	if t.Datastore, err = s.name(ctx, t.ds.Reference()); err != nil {
		return t, fmt.Errorf("read datastore %s: %w", spec.Datastore, err)
	}
	if _, err := s.Folder(ctx, t.dc, spec.Folder); err != nil {
		return t, err
	}
	if _, err := s.ResourcePool(ctx, t.dc, t.host, spec.ResourcePool); err != nil {
		return t, err
	}
	return t, nil
}

// Network fails unless the target's datacenter has exactly one network of
// this name, path or MoRef.
func (t Target) Network(ctx context.Context, name string) error {
	_, err := t.s.Network(ctx, t.dc, name)
	return err
}

// Room reads what a new VM on the target's host needs to be pinned there
// (see HostPlacement) and what the host and datastore have free.
func (t Target) Room(ctx context.Context) (Placement, HostCapacity, error) {
	p, err := t.s.HostPlacement(ctx, t.host)
	if err != nil {
		return p, HostCapacity{}, err
	}
	c, err := t.s.Capacity(ctx, t.host, t.ds)
	return p, c, err
}

// CheckImport refuses, before vCenter is asked to create anything, an
// image the target's host and datastore cannot take (see CheckPlacement).
func (t Target) CheckImport(ctx context.Context, d *Descriptor, provisioning string) error {
	return t.s.CheckPlacement(ctx, t.host, t.ds, d, provisioning)
}

// Leftover finds what an interrupted import of name left in the target's
// datacenter and, for an import target, on its datastore (see
// FindLeftover).
func (t Target) Leftover(ctx context.Context, name string) (*Leftover, error) {
	if t.ds == nil {
		return t.s.FindLeftover(ctx, t.dc, name)
	}
	return t.s.FindLeftover(ctx, t.dc, name, t.ds)
}

// MoveHere migrates vm to the target's host (see Migrate).
func (t Target) MoveHere(ctx context.Context, vm *object.VirtualMachine) error {
	return t.s.Migrate(ctx, vm, t.host)
}

// VMsNamed reads every VM of the target's datacenter named exactly name,
// except the half-imported ones of skip, sorted by inventory path.
func (t Target) VMsNamed(ctx context.Context, name string, skip *Leftover) ([]VMDetail, error) {
	vms, err := t.s.VMByName(ctx, t.dc, name)
	if err != nil {
		return nil, err
	}
	var out []VMDetail
	for _, vm := range vms {
		if skip.holds(vm) {
			continue
		}
		d, err := t.s.ReadVM(ctx, vm)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// VMPaths are the inventory paths of the half-imported VMs.
func (l *Leftover) VMPaths() []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l.VMs))
	for i, vm := range l.VMs {
		out[i] = vm.InventoryPath
	}
	return out
}

func (l *Leftover) holds(vm *object.VirtualMachine) bool {
	if l == nil {
		return false
	}
	for _, v := range l.VMs {
		if v.Reference() == vm.Reference() {
			return true
		}
	}
	return false
}

// VMDetail is one VM as a deployment decides from it and reports it.
type VMDetail struct {
	Name, Moid, InstanceUUID string
	Path                     string // inventory path; the name when unknown
	Host                     string // ESXi host name
	Datastores               []string
	PowerState               string
	IP                       string            // guest.ipAddress (VMware Tools)
	Marks                    map[string]string // every custom attribute set, by name
	ExtraConfig              map[string]string // config.extraConfig, values as text
}

// vmDetailProps are the properties ReadVM reads in one call.
var vmDetailProps = []string{"name", "config.instanceUuid", "config.extraConfig", "runtime.host", "runtime.powerState",
	"guest.ipAddress", "datastore"}

// ReadVM reads one VM's detail.
func (s *Session) ReadVM(ctx context.Context, vm *object.VirtualMachine) (VMDetail, error) {
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), vmDetailProps, &m); err != nil {
		return VMDetail{}, fmt.Errorf("read vm %s: %w", vm.InventoryPath, err)
	}
	d := VMDetail{Name: m.Name, Moid: vm.Reference().Value, Path: vm.InventoryPath, PowerState: string(m.Runtime.PowerState),
		ExtraConfig: map[string]string{}}
	if d.Path == "" {
		d.Path = m.Name
	}
	if m.Guest != nil {
		d.IP = m.Guest.IpAddress
	}
	if m.Config != nil {
		d.InstanceUUID = m.Config.InstanceUuid
		for _, o := range m.Config.ExtraConfig {
			ov := o.GetOptionValue()
			d.ExtraConfig[ov.Key] = fmt.Sprint(ov.Value)
		}
	}
	var err error
	if m.Runtime.Host != nil {
		if d.Host, err = s.name(ctx, *m.Runtime.Host); err != nil {
			return VMDetail{}, fmt.Errorf("read host of vm %s: %w", d.Path, err)
		}
	}
	for _, ref := range m.Datastore {
		n, err := s.name(ctx, ref)
		if err != nil {
			return VMDetail{}, fmt.Errorf("read datastore of vm %s: %w", d.Path, err)
		}
		d.Datastores = append(d.Datastores, n)
	}
	if d.Marks, err = s.ReadMarks(ctx, vm); err != nil {
		return VMDetail{}, err
	}
	return d, nil
}

// VMRef is the VM of a MoRef value ("vm-42") read earlier, to act on; it
// is nil for "".
func (s *Session) VMRef(moid string) *object.VirtualMachine {
	if moid == "" {
		return nil
	}
	return object.NewVirtualMachine(s.c, types.ManagedObjectReference{Type: vmType, Value: moid})
}
