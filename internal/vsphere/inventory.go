package vsphere

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// FirstBootPrefix is the extraConfig key prefix of the SVM first-boot
// commands (guestinfo.klfirstboot.cmdN).
const FirstBootPrefix = "guestinfo.klfirstboot."

// inventoryPage is how many objects one RetrievePropertiesEx page holds.
var inventoryPage int32 = 1000

// Scope limits Inventory. Empty fields mean everything.
type Scope struct {
	Datacenter string
	Cluster    string   // a cluster name or path inside Datacenter
	Hosts      []string // keep only VMs on these ESXi hosts (by name)
	// Details adds config.extraConfig (FirstBoot, import marker) and the
	// vApp product; they make the answer several times larger.
	Details bool
}

// VM is one virtual machine as Inventory sees it.
type VM struct {
	Name         string
	Moid         string
	InstanceUUID string
	Host         string            // ESXi host name
	Cluster      string            // cluster (or standalone compute resource) name
	PowerState   string            // poweredOn, poweredOff, suspended
	IP           string            // guest.ipAddress (needs VMware Tools)
	HostName     string            // guest.hostName
	Marks        map[string]string // every custom attribute set, by name
	// With Scope.Details:
	FirstBoot        map[string]string // extraConfig keys under FirstBootPrefix
	ImportIncomplete bool              // ImportMarkerKey says incomplete
	Product          string            // vApp product name
	ProductVersion   string
}

// Inventory lists the VMs in scope with one property-collector pass over a
// container view (VMs, their hosts and clusters, and the custom attribute
// definitions in the same request), paging with
// ContinueRetrievePropertiesEx. Its SOAP round trips do not grow with the
// number of VMs, only with pages of inventoryPage objects.
func (s *Session) Inventory(ctx context.Context, sc Scope) ([]VM, error) {
	root := s.c.ServiceContent.RootFolder
	known := map[types.ManagedObjectReference]string{}
	if sc.Datacenter != "" || sc.Cluster != "" {
		dc, err := s.Datacenter(ctx, sc.Datacenter)
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		root = dc.Reference()
		if sc.Cluster != "" {
			cl, err := s.Cluster(ctx, dc, sc.Cluster)
			if err != nil {
				return nil, fmt.Errorf("inventory: %w", err)
			}
			root = cl.Reference()
			known[root] = cl.Name() // the view holds what is inside the cluster, not the cluster
		}
	}
	kinds := []string{"VirtualMachine", "HostSystem", "ComputeResource", "ClusterComputeResource"}
	v, err := view.NewManager(s.c).CreateContainerView(ctx, root, kinds, true)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()

	vmProps := []string{"name", "config.instanceUuid", "runtime.host", "runtime.powerState",
		"guest.ipAddress", "guest.hostName", "customValue"}
	if sc.Details {
		vmProps = append(vmProps, "config.extraConfig", "config.vAppConfig")
	}
	objects := []types.ObjectSpec{{
		Obj:  v.Reference(),
		Skip: types.NewBool(true),
		SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{
			Type: "ContainerView", Path: "view",
		}},
	}}
	props := []types.PropertySpec{
		{Type: "VirtualMachine", PathSet: vmProps},
		{Type: "HostSystem", PathSet: []string{"name", "parent"}},
		{Type: "ComputeResource", PathSet: []string{"name"}},
		{Type: "ClusterComputeResource", PathSet: []string{"name"}},
	}
	if cfm := s.c.ServiceContent.CustomFieldsManager; cfm != nil {
		objects = append(objects, types.ObjectSpec{Obj: *cfm})
		props = append(props, types.PropertySpec{Type: "CustomFieldsManager", PathSet: []string{"field"}})
	}
	contents, err := s.retrieveAll(ctx, types.PropertyFilterSpec{ObjectSet: objects, PropSet: props})
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return buildInventory(contents, sc, known), nil
}

// retrieveAll runs RetrievePropertiesEx and follows its paging token.
func (s *Session) retrieveAll(ctx context.Context, spec types.PropertyFilterSpec) ([]types.ObjectContent, error) {
	pc := s.c.ServiceContent.PropertyCollector
	res, err := methods.RetrievePropertiesEx(ctx, s.c, &types.RetrievePropertiesEx{
		This: pc, SpecSet: []types.PropertyFilterSpec{spec},
		Options: types.RetrieveOptions{MaxObjects: inventoryPage},
	})
	if err != nil {
		return nil, err
	}
	if res.Returnval == nil {
		return nil, nil
	}
	out := res.Returnval.Objects
	token := res.Returnval.Token
	for token != "" {
		next, err := methods.ContinueRetrievePropertiesEx(ctx, s.c, &types.ContinueRetrievePropertiesEx{This: pc, Token: token})
		if err != nil {
			return nil, err
		}
		out = append(out, next.Returnval.Objects...)
		token = next.Returnval.Token
	}
	return out, nil
}

// buildInventory joins VMs with their hosts, clusters and attribute names.
func buildInventory(contents []types.ObjectContent, sc Scope, names map[types.ManagedObjectReference]string) []VM {
	parents := map[types.ManagedObjectReference]types.ManagedObjectReference{}
	var fieldKeys map[string]int32
	var vms []VM
	vmHost := map[int]types.ManagedObjectReference{}
	vmMarks := map[int][]types.BaseCustomFieldValue{}

	for _, oc := range contents {
		switch oc.Obj.Type {
		case "CustomFieldsManager":
			for _, p := range oc.PropSet {
				if defs, ok := p.Val.(types.ArrayOfCustomFieldDef); ok {
					fieldKeys = vmFieldKeys(defs.CustomFieldDef)
				}
			}
		case "HostSystem":
			for _, p := range oc.PropSet {
				switch p.Name {
				case "name":
					names[oc.Obj], _ = p.Val.(string)
				case "parent":
					parents[oc.Obj], _ = p.Val.(types.ManagedObjectReference)
				}
			}
		case "ComputeResource", "ClusterComputeResource":
			for _, p := range oc.PropSet {
				if p.Name == "name" {
					names[oc.Obj], _ = p.Val.(string)
				}
			}
		case "VirtualMachine":
			vm := VM{Moid: oc.Obj.Value}
			i := len(vms)
			for _, p := range oc.PropSet {
				switch p.Name {
				case "name":
					vm.Name, _ = p.Val.(string)
				case "config.instanceUuid":
					vm.InstanceUUID, _ = p.Val.(string)
				case "runtime.host":
					vmHost[i], _ = p.Val.(types.ManagedObjectReference)
				case "runtime.powerState":
					if ps, ok := p.Val.(types.VirtualMachinePowerState); ok {
						vm.PowerState = string(ps)
					}
				case "guest.ipAddress":
					vm.IP, _ = p.Val.(string)
				case "guest.hostName":
					vm.HostName, _ = p.Val.(string)
				case "customValue":
					if a, ok := p.Val.(types.ArrayOfCustomFieldValue); ok {
						vmMarks[i] = a.CustomFieldValue
					}
				case "config.extraConfig":
					if a, ok := p.Val.(types.ArrayOfOptionValue); ok {
						for _, o := range a.OptionValue {
							ov := o.GetOptionValue()
							val := fmt.Sprint(ov.Value)
							switch {
							case strings.HasPrefix(ov.Key, FirstBootPrefix):
								if vm.FirstBoot == nil {
									vm.FirstBoot = map[string]string{}
								}
								vm.FirstBoot[ov.Key] = val
							case ov.Key == ImportMarkerKey:
								vm.ImportIncomplete = val == ImportMarkerIncomplete
							}
						}
					}
				case "config.vAppConfig":
					if b, ok := p.Val.(types.BaseVmConfigInfo); ok && b != nil {
						if vc := b.GetVmConfigInfo(); vc != nil && len(vc.Product) > 0 {
							vm.Product, vm.ProductVersion = vc.Product[0].Name, vc.Product[0].Version
						}
					}
				}
			}
			vms = append(vms, vm)
		}
	}

	keep := map[string]bool{}
	for _, h := range sc.Hosts {
		keep[h] = true
	}
	out := vms[:0]
	for i, vm := range vms {
		if h, ok := vmHost[i]; ok {
			vm.Host = names[h]
			vm.Cluster = names[parents[h]]
		}
		if len(keep) > 0 && !keep[vm.Host] {
			continue
		}
		vm.Marks = resolveMarks(vmMarks[i], fieldKeys)
		out = append(out, vm)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Name != out[b].Name {
			return out[a].Name < out[b].Name
		}
		return out[a].Moid < out[b].Moid
	})
	return out
}
