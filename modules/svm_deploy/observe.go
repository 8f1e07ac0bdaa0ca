package svmdeploy

import (
	"context"
	"fmt"
	"sort"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/vsphere"
)

// vmProps are the VM properties readVM needs, read in one call.
var vmProps = []string{"name", "config.instanceUuid", "config.extraConfig", "runtime.host", "runtime.powerState",
	"guest.ipAddress", "datastore"}

// readVMs reads every VM named name in dc except those in skip (MoRef
// values of leftovers), sorted by path.
func readVMs(ctx context.Context, s *vsphere.Session, dc *object.Datacenter, name string, skip map[string]bool) ([]vmInfo, error) {
	vms, err := s.VMByName(ctx, dc, name)
	if err != nil {
		return nil, err
	}
	var out []vmInfo
	for _, vm := range vms {
		if skip[vm.Reference().Value] {
			continue
		}
		info, err := readVM(ctx, s, vm)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// readVM reads what the plan and the result need about one VM.
func readVM(ctx context.Context, s *vsphere.Session, vm *object.VirtualMachine) (vmInfo, error) {
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), vmProps, &m); err != nil {
		return vmInfo{}, fmt.Errorf("read vm %s: %w", vm.InventoryPath, err)
	}
	info := vmInfo{Name: m.Name, Moid: vm.Reference().Value, Path: vm.InventoryPath, PowerState: string(m.Runtime.PowerState)}
	if info.Path == "" {
		info.Path = m.Name
	}
	if m.Guest != nil {
		info.IP = m.Guest.IpAddress
	}
	ec := map[string]string{}
	if m.Config != nil {
		info.InstanceUUID = m.Config.InstanceUuid
		for _, o := range m.Config.ExtraConfig {
			ov := o.GetOptionValue()
			ec[ov.Key] = fmt.Sprint(ov.Value)
		}
	}
	info.FirstBoot = firstBootList(ec)
	info.DeployVersion = ec[deployVersionKey]
	var err error
	if m.Runtime.Host != nil {
		if info.Host, err = entityName(ctx, s, *m.Runtime.Host); err != nil {
			return vmInfo{}, fmt.Errorf("read host of vm %s: %w", info.Path, err)
		}
	}
	for _, ref := range m.Datastore {
		n, err := entityName(ctx, s, ref)
		if err != nil {
			return vmInfo{}, fmt.Errorf("read datastore of vm %s: %w", info.Path, err)
		}
		info.Datastores = append(info.Datastores, n)
	}
	if info.Marks, err = s.ReadMarks(ctx, vm); err != nil {
		return vmInfo{}, err
	}
	return info, nil
}

func entityName(ctx context.Context, s *vsphere.Session, ref types.ManagedObjectReference) (string, error) {
	var me mo.ManagedEntity
	if err := property.DefaultCollector(s.Client()).RetrieveOne(ctx, ref, []string{"name"}, &me); err != nil {
		return "", err
	}
	return me.Name, nil
}

// SVM is the `svm` return value.
type SVM struct {
	Name         string            `json:"name"`
	Moid         string            `json:"moid"`
	InstanceUUID string            `json:"instance_uuid"`
	Host         string            `json:"host"`
	Datastore    string            `json:"datastore"`
	PowerState   string            `json:"power_state"`
	IP           string            `json:"ip"`
	Version      string            `json:"version"`
	Marks        map[string]string `json:"marks"`
}

func svmView(v vmInfo) SVM {
	marks := v.Marks
	if marks == nil {
		marks = map[string]string{}
	}
	return SVM{Name: v.Name, Moid: v.Moid, InstanceUUID: v.InstanceUUID, Host: v.Host, Datastore: v.datastore(),
		PowerState: v.PowerState, IP: v.IP, Version: v.version(), Marks: marks}
}
