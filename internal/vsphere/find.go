package vsphere

import (
	"context"
	"errors"
	"fmt"
	"path"
	"reflect"
	"sort"
	"sync"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Every finder below takes a MoRef ("HostSystem:host-21"), an inventory
// path ("/DC0/host/DC0_C0/DC0_C0_H0") or a plain name searched recursively,
// and returns exactly one object: a *NotFoundError or an *AmbiguousError
// otherwise, never the first of several matches (govc's ManagedObject).

// lookups remembers the placement objects (datacenter, host, cluster,
// datastore, network, folder, resource pool) a session found, so Apply
// does not search again what Observe resolved: a session lives for one
// module run, seconds in which an admin does not rename a datastore, and
// a MoRef stays valid. VMs are never remembered: runs create and delete
// them.
type lookups struct {
	mu sync.Mutex
	m  map[string]any
	// busy holds the lookups under way: a caller reading beside another
	// (the fleet reads its VMs and the DRS settings side by side) waits
	// for its answer rather than asking vCenter again.
	busy map[string]chan struct{}
}

// remember returns what find found for key, calling find only the first
// time it succeeds.
func remember[T any](l *lookups, key string, find func() (T, error)) (T, error) {
	for {
		l.mu.Lock()
		if v, ok := l.m[key]; ok {
			l.mu.Unlock()
			return v.(T), nil
		}
		if wait, ok := l.busy[key]; ok {
			l.mu.Unlock()
			<-wait // then take its answer, or look up again after its error
			continue
		}
		if l.busy == nil {
			l.busy = map[string]chan struct{}{}
		}
		done := make(chan struct{})
		l.busy[key] = done
		l.mu.Unlock()

		got, err := find()
		l.mu.Lock()
		delete(l.busy, key)
		close(done)
		if err == nil {
			if l.m == nil {
				l.m = map[string]any{}
			}
			l.m[key] = got
		}
		l.mu.Unlock()
		return got, err
	}
}

// lookupKey names a lookup of kind under the objects in scope.
func lookupKey(kind, name string, scope ...object.Reference) string {
	k := kind + "\x00" + name
	for _, o := range scope {
		if o != nil && !reflect.ValueOf(o).IsNil() {
			k += "\x00" + o.Reference().String()
		}
	}
	return k
}

// finder returns a govmomi finder scoped to dc; nil means the only
// datacenter there is.
func (s *Session) finder(ctx context.Context, dc *object.Datacenter) (*find.Finder, *object.Datacenter, error) {
	if dc == nil {
		var err error
		if dc, err = s.Datacenter(ctx, ""); err != nil {
			return nil, nil, err
		}
	}
	f := find.NewFinder(s.c, true)
	f.SetDatacenter(dc)
	return f, dc, nil
}

// one picks the single element of a finder's list result.
func one[T interface {
	Reference() types.ManagedObjectReference
}](kind, name, in string, list []T, err error, path func(T) string) (T, error) {
	var zero T
	var nf *find.NotFoundError
	switch {
	case errors.As(err, &nf):
		return zero, &NotFoundError{Kind: kind, Name: name, In: in}
	case err != nil:
		return zero, fmt.Errorf("find %s %q: %w", kind, name, err)
	case len(list) == 0:
		return zero, &NotFoundError{Kind: kind, Name: name, In: in}
	case len(list) > 1:
		paths := make([]string, len(list))
		for i, o := range list {
			paths[i] = path(o)
		}
		return zero, &AmbiguousError{Kind: kind, Name: name, Matches: paths}
	}
	return list[0], nil
}

// maxCandidates bounds the names a not-found error lists.
const maxCandidates = 10

// withCandidates adds to a not-found error the names that exist in the same
// scope, so the user sees how vCenter spells them; a failed listing leaves
// the error as it was.
func withCandidates(err error, names func() ([]string, error)) error {
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		return err
	}
	all, lerr := names()
	if lerr != nil || len(all) == 0 {
		return err
	}
	sort.Strings(all)
	nf.Candidates, nf.More = all[:min(len(all), maxCandidates)], max(0, len(all)-maxCandidates)
	return err
}

// namesOf maps objects to their base names (the name a user would type).
func namesOf[T any](list []T, invPath func(T) string) []string {
	out := make([]string, len(list))
	for i, o := range list {
		out[i] = path.Base(invPath(o))
	}
	return out
}

func scopeName(dc *object.Datacenter) string {
	if dc == nil {
		return ""
	}
	return "datacenter " + dc.InventoryPath
}

// Datacenter finds one datacenter. An empty name means the only one there
// is (an error when there are several).
func (s *Session) Datacenter(ctx context.Context, name string) (*object.Datacenter, error) {
	arg := name
	if arg == "" {
		arg = "*"
	}
	return remember(&s.found, lookupKey("datacenter", name), func() (*object.Datacenter, error) {
		list, err := find.NewFinder(s.c, true).DatacenterList(ctx, arg)
		return one("datacenter", name, "", list, err, func(o *object.Datacenter) string { return o.InventoryPath })
	})
}

// Host finds one ESXi host in dc.
func (s *Session) Host(ctx context.Context, dc *object.Datacenter, name string) (*object.HostSystem, error) {
	if name == "" {
		return nil, errors.New("find host: a host name, path or MoRef is required")
	}
	f, dc, err := s.finder(ctx, dc)
	if err != nil {
		return nil, err
	}
	return remember(&s.found, lookupKey("host", name, dc), func() (*object.HostSystem, error) {
		list, err := f.HostSystemList(ctx, name)
		h, err := one("host", name, scopeName(dc), list, err, func(o *object.HostSystem) string { return o.InventoryPath })
		return h, withCandidates(err, func() ([]string, error) {
			places, err := s.Hosts(ctx, dc.Name())
			names := make([]string, len(places))
			for i, p := range places {
				names[i] = p.Name
			}
			return names, err
		})
	})
}

// Cluster finds one cluster in dc.
func (s *Session) Cluster(ctx context.Context, dc *object.Datacenter, name string) (*object.ClusterComputeResource, error) {
	f, dc, err := s.finder(ctx, dc)
	if err != nil {
		return nil, err
	}
	return remember(&s.found, lookupKey("cluster", name, dc), func() (*object.ClusterComputeResource, error) {
		list, err := f.ClusterComputeResourceList(ctx, name)
		return one("cluster", name, scopeName(dc), list, err, func(o *object.ClusterComputeResource) string { return o.InventoryPath })
	})
}

// Datastore finds one datastore in dc.
func (s *Session) Datastore(ctx context.Context, dc *object.Datacenter, name string) (*object.Datastore, error) {
	if name == "" {
		return nil, errors.New("find datastore: a datastore name, path or MoRef is required")
	}
	f, dc, err := s.finder(ctx, dc)
	if err != nil {
		return nil, err
	}
	return remember(&s.found, lookupKey("datastore", name, dc), func() (*object.Datastore, error) {
		list, err := f.DatastoreList(ctx, name)
		ds, err := one("datastore", name, scopeName(dc), list, err, func(o *object.Datastore) string { return o.InventoryPath })
		return ds, withCandidates(err, func() ([]string, error) {
			all, err := f.DatastoreList(ctx, "*")
			return namesOf(all, func(o *object.Datastore) string { return o.InventoryPath }), err
		})
	})
}

// Network finds one network (standard, distributed port group or opaque)
// in dc.
func (s *Session) Network(ctx context.Context, dc *object.Datacenter, name string) (object.NetworkReference, error) {
	f, dc, err := s.finder(ctx, dc)
	if err != nil {
		return nil, err
	}
	return remember(&s.found, lookupKey("network", name, dc), func() (object.NetworkReference, error) {
		list, err := f.NetworkList(ctx, name)
		n, err := one("network", name, scopeName(dc), list, err, func(o object.NetworkReference) string { return o.GetInventoryPath() })
		return n, withCandidates(err, func() ([]string, error) {
			all, err := f.NetworkList(ctx, "*")
			return namesOf(all, func(o object.NetworkReference) string { return o.GetInventoryPath() }), err
		})
	})
}

// Folder finds one VM folder in dc by inventory path ("/DC0/vm/svms"), path
// relative to the datacenter's vm folder ("svms"), name or MoRef. An empty
// name means the datacenter's vm folder.
func (s *Session) Folder(ctx context.Context, dc *object.Datacenter, name string) (*object.Folder, error) {
	if name == "" {
		if dc == nil {
			return nil, errors.New("find folder: a datacenter is required for the default vm folder")
		}
		return remember(&s.found, lookupKey("vm folder", "", dc), func() (*object.Folder, error) {
			fs, err := dc.Folders(ctx)
			if err != nil {
				return nil, fmt.Errorf("find vm folder of datacenter %s: %w", dc.InventoryPath, err)
			}
			return fs.VmFolder, nil
		})
	}
	f, dc, err := s.finder(ctx, dc)
	if err != nil {
		return nil, err
	}
	return remember(&s.found, lookupKey("folder", name, dc), func() (*object.Folder, error) {
		list, err := f.FolderList(ctx, name)
		return one("folder", name, scopeName(dc), list, err, func(o *object.Folder) string { return o.InventoryPath })
	})
}

// ResourcePool finds one resource pool in dc. An empty name means the root
// pool of host's cluster (or of the standalone host).
func (s *Session) ResourcePool(ctx context.Context, dc *object.Datacenter, host *object.HostSystem, name string) (*object.ResourcePool, error) {
	if name == "" {
		if host == nil {
			return nil, errors.New("find resource pool: a host is required for the default pool")
		}
		return remember(&s.found, lookupKey("host resource pool", "", host), func() (*object.ResourcePool, error) {
			p, err := host.ResourcePool(ctx)
			if err != nil {
				return nil, fmt.Errorf("find resource pool of host %s: %w", host.InventoryPath, err)
			}
			return p, nil
		})
	}
	f, dc, err := s.finder(ctx, dc)
	if err != nil {
		return nil, err
	}
	return remember(&s.found, lookupKey("resource pool", name, dc), func() (*object.ResourcePool, error) {
		list, err := f.ResourcePoolList(ctx, name)
		return one("resource pool", name, scopeName(dc), list, err, func(o *object.ResourcePool) string { return o.InventoryPath })
	})
}

// VMByName returns every VM in dc whose name is exactly name (no pattern
// matching), with InventoryPath set, so the caller decides what several
// matches mean. No match is an empty slice, not an error.
func (s *Session) VMByName(ctx context.Context, dc *object.Datacenter, name string) ([]*object.VirtualMachine, error) {
	root := s.c.ServiceContent.RootFolder
	if dc != nil {
		root = dc.Reference()
	}
	v, err := view.NewManager(s.c).CreateContainerView(ctx, root, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, fmt.Errorf("find vm %q: %w", name, err)
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()

	// Names are compared here, not with property.Match, whose patterns
	// would treat "[" or "*" in a VM name as wildcards.
	var all []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name"}, &all); err != nil {
		return nil, fmt.Errorf("find vm %q: %w", name, err)
	}
	var out []*object.VirtualMachine
	for _, m := range all {
		if m.Name != name {
			continue
		}
		vm := object.NewVirtualMachine(s.c, m.Self)
		if p, err := find.InventoryPath(ctx, s.c, m.Self); err == nil {
			vm.InventoryPath = p
		} else if !isGone(err) {
			return nil, fmt.Errorf("find vm %q: inventory path of %s: %w", name, m.Self, err)
		} else {
			continue // removed while we looked
		}
		out = append(out, vm)
	}
	return out, nil
}

// VM finds exactly one VM by MoRef, inventory path or name.
func (s *Session) VM(ctx context.Context, dc *object.Datacenter, name string) (*object.VirtualMachine, error) {
	f, dc, err := s.finder(ctx, dc)
	if err != nil {
		return nil, err
	}
	list, err := f.VirtualMachineList(ctx, name)
	return one("vm", name, scopeName(dc), list, err, func(o *object.VirtualMachine) string { return o.InventoryPath })
}

// name returns an object's name, for messages and checks.
func (s *Session) name(ctx context.Context, ref types.ManagedObjectReference) (string, error) {
	var me mo.ManagedEntity
	if err := property.DefaultCollector(s.c).RetrieveOne(ctx, ref, []string{"name"}, &me); err != nil {
		return "", err
	}
	return me.Name, nil
}
