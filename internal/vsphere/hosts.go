package vsphere

import (
	"context"
	"fmt"
	"sort"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// HostPlace is where an ESXi host sits in the vCenter inventory.
type HostPlace struct {
	Name       string
	Datacenter string
	Cluster    string // empty for a standalone host
}

// Hosts lists the ESXi hosts of one datacenter (empty: every datacenter)
// with their cluster, for inventories that group hypervisors as vCenter
// does. One container view and one property read per datacenter.
func (s *Session) Hosts(ctx context.Context, datacenter string) ([]HostPlace, error) {
	pattern := datacenter
	if pattern == "" {
		pattern = "*"
	}
	dcs, err := find.NewFinder(s.c, true).DatacenterList(ctx, pattern)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	var out []HostPlace
	for _, dc := range dcs {
		v, err := view.NewManager(s.c).CreateContainerView(ctx, dc.Reference(), []string{"HostSystem", "ClusterComputeResource"}, true)
		if err != nil {
			return nil, fmt.Errorf("list hosts of %s: %w", dc.Name(), err)
		}
		var hosts []mo.HostSystem
		var clusters []mo.ClusterComputeResource
		err = v.Retrieve(ctx, []string{"HostSystem"}, []string{"name", "parent"}, &hosts)
		if err == nil {
			err = v.Retrieve(ctx, []string{"ClusterComputeResource"}, []string{"name"}, &clusters)
		}
		_ = v.Destroy(context.WithoutCancel(ctx))
		if err != nil {
			return nil, fmt.Errorf("list hosts of %s: %w", dc.Name(), err)
		}
		names := map[types.ManagedObjectReference]string{}
		for _, c := range clusters {
			names[c.Self] = c.Name
		}
		for _, h := range hosts {
			p := HostPlace{Name: h.Name, Datacenter: dc.Name()}
			if h.Parent != nil {
				p.Cluster = names[*h.Parent] // a standalone host's parent is a ComputeResource: no cluster
			}
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
