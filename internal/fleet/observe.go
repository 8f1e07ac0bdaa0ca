package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/ksc"
	"github.com/ksvla/lightagent/internal/ksc/filter"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// InventoryReader lists the VMs in a scope in one pass (vsphere.Session).
type InventoryReader interface {
	Inventory(ctx context.Context, sc vsphere.Scope) ([]vsphere.VM, error)
}

// HostLister finds KSC host records by filter with paging, and reads one
// host's products (ksc.Client).
type HostLister interface {
	FindHostRecords(ctx context.Context, filter string) ([]ksc.Host, error)
	GetHostProducts(ctx context.Context, hostID string) ([]ksc.Product, error)
}

// VersionProber asks an SVM for its Protection Server version through
// klconfig (`version`); it returns an error when the VM does not answer as
// an SVM.
type VersionProber interface {
	ProbeVersion(ctx context.Context, ip string) (string, error)
}

// PlacementReader reads how VMs are pinned to their hosts, by MoRef value
// (vsphere.Session).
type PlacementReader interface {
	Placements(ctx context.Context, moids []string) (map[string]vsphere.Placement, error)
}

// Sources are the clients Observe reads from. KSC and Prober are optional:
// without KSC, only marked SVMs are recognised and no agents are known.
type Sources struct {
	// Inventory lists the VMs in scope. Left nil with DRS set, DRS lists
	// them, and a scope narrowed to hosts is read in one pass (its
	// datacenter or cluster, split into the hosts' VMs and their
	// neighbours) rather than the hosts' VMs and then their clusters'.
	Inventory InventoryReader
	KSC       HostLister
	Prober    VersionProber
	// Placements, when set, adds each SVM's pin to the fleet.
	Placements PlacementReader
	// DRS, when set, adds which VMs DRS may move, and the agents it may
	// move onto the hosts in scope (drs.go).
	DRS DRSReader
}

// Observe reads vCenter and KSC and builds the fleet. Round trips grow with
// pages of VMs and hosts, not with their number (see kscHostsOf).
func Observe(ctx context.Context, src Sources, sc vsphere.Scope, r Rules) (Fleet, error) {
	snap, err := Read(ctx, src, sc, r)
	if err != nil {
		return Fleet{}, err
	}
	return snap.Build(nil, r), nil
}

// Snapshot is what one Observe reads from vCenter and KSC before joining
// it. Kept (agent_facts' cache), it is built again for any part of the
// hosts it covers, so that the callers of a polling interval share one
// read: KSC is read whole whatever the scope, and vCenter's answer for a
// set of hosts is the VMs on them.
type Snapshot struct {
	VMs         []VM               `json:"vms"`
	Hosts       []KSCHost          `json:"ksc_hosts"`
	Probes      map[string]Version `json:"probes,omitempty"`
	ProbeErrors []string           `json:"probe_errors,omitempty"`
	// Pins is nil when placements were not read.
	Pins map[string]Pin `json:"pins"`
	// Narrowed: the VMs were read for a cluster or some hosts only.
	Narrowed bool `json:"narrowed"`
	// Movable: by MoRef value, the VMs DRS may move; nil when not read.
	// Elsewhere: the VMs of the scope's clusters outside its hosts.
	Movable   map[string]bool `json:"drs_movable"`
	Elsewhere []VM            `json:"elsewhere,omitempty"`
}

// Read reads what Observe builds the fleet from. vCenter and KSC are
// different servers, so KSC is read while vCenter answers: the run takes
// the longer of the two, not their sum. An error of vCenter's is reported
// before KSC's, as when they were read one after the other.
func Read(ctx context.Context, src Sources, sc vsphere.Scope, r Rules) (Snapshot, error) {
	var kscRead *pending[[]KSCHost]
	if src.KSC != nil {
		kscRead = start(ctx, func(ctx context.Context) ([]KSCHost, error) { return readKSC(ctx, src.KSC, r) })
	}
	defer kscRead.stop() // of no use after vCenter's error
	snap, err := readVCenter(ctx, src, sc)
	if err != nil {
		return Snapshot{}, err
	}
	hosts, err := kscRead.wait()
	if err != nil {
		return Snapshot{}, err
	}
	snap.Hosts = hosts
	if src.Prober != nil && r.SVMNamePattern != nil {
		snap.Probes, snap.ProbeErrors = probe(ctx, src.Prober, snap.VMs, r)
	}
	snap.Narrowed = sc.Cluster != "" || len(sc.Hosts) > 0
	if src.Placements != nil {
		// Which VMs are SVMs is known only once KSC is read: read their
		// placements, for Build to add.
		if moids := snap.svmMoids(r); len(moids) > 0 {
			pls, err := src.Placements.Placements(ctx, moids)
			if err != nil {
				return Snapshot{}, err
			}
			snap.Pins = make(map[string]Pin, len(pls))
			for id, p := range pls {
				snap.Pins[id] = Pin{Pinned: p.Pinned(), Missing: p.Missing()}
			}
		}
	}
	return snap, nil
}

// readVCenter reads the VMs in scope and, with src.DRS, which of them DRS
// may move and the VMs it may move onto the scope's hosts.
func readVCenter(ctx context.Context, src Sources, sc vsphere.Scope) (Snapshot, error) {
	var snap Snapshot
	if src.Inventory == nil && src.DRS == nil {
		return Snapshot{}, errors.New("fleet: no source of the inventory (Sources.Inventory or DRS)")
	}
	// Scoped to hosts, the DRS part also needs the VMs of their clusters
	// on the other hosts (others): in the whole scope without the hosts.
	whole := sc
	whole.Hosts = nil
	neighbours := src.DRS != nil && len(sc.Hosts) > 0
	keep := make(map[string]bool, len(sc.Hosts))
	for _, h := range sc.Hosts {
		keep[h] = true
	}
	// The DRS settings do not depend on the VMs: read side by side.
	var drsRead *pending[map[string]vsphere.ClusterDRS]
	if src.DRS != nil {
		drsRead = start(ctx, func(ctx context.Context) (map[string]vsphere.ClusterDRS, error) {
			return src.DRS.ClustersDRS(ctx, sc.Datacenter)
		})
	}
	defer drsRead.stop()
	var inv, others []vsphere.VM
	if neighbours && src.Inventory == nil {
		// One pass, split here: vCenter reads the whole scope once.
		all, err := src.DRS.Inventory(ctx, whole)
		if err != nil {
			return Snapshot{}, err
		}
		inv, others = splitByHost(all, keep)
	} else {
		var err error
		if inv, err = src.inventory().Inventory(ctx, sc); err != nil {
			return Snapshot{}, err
		}
		if neighbours {
			all, err := src.DRS.Inventory(ctx, whole)
			if err != nil {
				return Snapshot{}, fmt.Errorf("read the VMs DRS may move onto %v: %w", sc.Hosts, err)
			}
			_, others = splitByHost(all, keep)
		}
	}
	snap.VMs = fromInventoryAll(inv)
	if src.DRS == nil {
		return snap, nil
	}
	wanted := map[string]bool{}
	for _, v := range snap.VMs {
		if v.Cluster != "" {
			wanted[v.Cluster] = true
		}
	}
	for _, v := range others {
		if wanted[v.Cluster] {
			snap.Elsewhere = append(snap.Elsewhere, fromInventory(v))
		}
	}
	clusters, err := drsRead.wait()
	if err != nil {
		return Snapshot{}, err
	}
	snap.Movable = movable(clusters, snap.VMs, snap.Elsewhere)
	return snap, nil
}

// splitByHost splits VMs into those on the kept hosts and the others.
func splitByHost(vms []vsphere.VM, keep map[string]bool) (in, out []vsphere.VM) {
	for _, v := range vms {
		if keep[v.Host] {
			in = append(in, v)
		} else {
			out = append(out, v)
		}
	}
	return in, out
}

// pending is a read running in its own goroutine.
type pending[T any] struct {
	done   chan struct{}
	cancel context.CancelFunc
	v      T
	err    error
}

func start[T any](ctx context.Context, read func(context.Context) (T, error)) *pending[T] {
	ctx, cancel := context.WithCancel(ctx)
	p := &pending[T]{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		p.v, p.err = read(ctx)
	}()
	return p
}

// wait returns the read's answer; a nil read (not started) answers nothing.
func (p *pending[T]) wait() (T, error) {
	if p == nil {
		var zero T
		return zero, nil
	}
	<-p.done
	return p.v, p.err
}

// stop cancels the read, if still running, and waits for it to end.
func (p *pending[T]) stop() {
	if p != nil {
		p.cancel()
		<-p.done
	}
}

func (src Sources) inventory() InventoryReader {
	if src.Inventory == nil {
		return src.DRS
	}
	return src.Inventory
}

// readKSC lists the hosts carrying the Protection Server or a Light Agent.
func readKSC(ctx context.Context, c HostLister, r Rules) ([]KSCHost, error) {
	var out []KSCHost
	for _, keys := range [][]string{r.ProtectionServer, r.LightAgent} {
		hs, err := kscHosts(ctx, c, keys)
		if err != nil {
			return nil, err
		}
		out = mergeHosts(out, hs)
	}
	return out, nil
}

// svmMoids are the MoRef values of the VMs Build recognises as SVMs,
// without building the rest of the fleet.
func (s Snapshot) svmMoids(r Rules) []string {
	if s.Probes != nil {
		r.Probes = s.Probes
	}
	idx := newHostIndex(s.Hosts)
	var out []string
	for _, vm := range s.VMs {
		h, _ := idx.match(vm)
		if svm, ok := recognise(vm, h, r); ok {
			out = append(out, svm.Moid)
		}
	}
	return out
}

// Build joins the snapshot into the fleet of the given ESXi hosts (all
// when none are given), as Observe would have read it for them.
func (s Snapshot) Build(hosts []string, r Rules) Fleet {
	vms := s.VMs
	r.Movable, r.Elsewhere = s.Movable, s.Elsewhere
	if len(hosts) > 0 {
		keep := make(map[string]bool, len(hosts))
		for _, h := range hosts {
			keep[h] = true
		}
		vms = make([]VM, 0, len(s.VMs))
		r.Elsewhere = append([]VM(nil), s.Elsewhere...)
		for _, v := range s.VMs {
			if keep[v.Host] {
				vms = append(vms, v)
			} else if s.Movable != nil {
				r.Elsewhere = append(r.Elsewhere, v)
			}
		}
	}
	if s.Probes != nil {
		r.Probes = s.Probes
	}
	if s.Pins != nil {
		r.Pins = s.Pins
	}
	r.NarrowedScope = s.Narrowed || len(hosts) > 0
	f := Build(vms, s.Hosts, r)
	f.ProbeErrors = s.ProbeErrors
	return f
}

// kscHosts lists the hosts carrying any of the products, one query per
// product key, so each row says which product it has (KES for Windows and
// KESL are different products with versions of their own). Keys that look
// like display names (with spaces) cannot be filtered on and are skipped
// here; they only match in Build.
func kscHosts(ctx context.Context, c HostLister, keys []string) ([]KSCHost, error) {
	var out []KSCHost
	for _, k := range keys {
		if strings.Contains(k, " ") {
			continue
		}
		hs, err := kscHostsOf(ctx, c, k)
		if err != nil {
			return nil, err
		}
		out = mergeHosts(out, hs)
	}
	return out, nil
}

// kscHostsOf lists the hosts carrying the product key. The version comes
// with the paged rows (ksc.AttrAppVersion carries the version of the
// product the filter selected), so round trips grow with pages, not hosts;
// a row without it falls back to GetHostProducts.
func kscHostsOf(ctx context.Context, c HostLister, key string) ([]KSCHost, error) {
	recs, err := c.FindHostRecords(ctx, filter.Eq(ksc.AttrProduct, key).String())
	if err != nil {
		return nil, fmt.Errorf("find KSC hosts with %s: %w", key, err)
	}
	out := make([]KSCHost, 0, len(recs))
	for _, r := range recs {
		h := KSCHost{ID: r.ID, DisplayName: r.DisplayName, DNSName: r.DNSName, FQDN: r.FQDN, IP: r.IP,
			Visible: r.Visible, OS: r.OS, Activated: r.Activated}
		if !r.BasesTime.IsZero() {
			h.BasesDate = r.BasesTime.UTC().Format(time.RFC3339)
		}
		if r.AppVersion != "" {
			h.Products = []Product{{Key: key, Version: Version(r.AppVersion)}}
		} else {
			ps, err := c.GetHostProducts(ctx, h.ID)
			if err != nil {
				return nil, err
			}
			for _, p := range ps {
				v := p.ProdVersion
				if v == "" {
					v = p.Version
				}
				h.Products = append(h.Products, Product{Key: p.Key, Version: Version(v), DisplayName: p.DisplayName})
			}
		}
		out = append(out, h)
	}
	return out, nil
}

func mergeHosts(a, b []KSCHost) []KSCHost {
	seen := map[string]int{}
	for i, h := range a {
		seen[h.ID] = i
	}
	for _, h := range b {
		if i, ok := seen[h.ID]; ok {
			a[i].Products = append(a[i].Products, h.Products...)
			continue
		}
		seen[h.ID] = len(a)
		a = append(a, h)
	}
	return a
}

// probe asks unmarked, powered-on VMs matching the SVM name pattern for
// their version; a VM that does not answer as an SVM is left unrecognised.
func probe(ctx context.Context, p VersionProber, vms []VM, r Rules) (map[string]Version, []string) {
	out := map[string]Version{}
	var errs []string
	for _, v := range vms {
		if !v.PoweredOn() || v.IP == "" || !r.SVMNamePattern.MatchString(v.Name) || v.Marks[r.MarkRole] == r.RoleSVM {
			continue
		}
		ver, err := p.ProbeVersion(ctx, v.IP)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s (%s): %v", v.Name, v.IP, err))
			continue
		}
		out[v.Name] = Version(ver)
	}
	return out, errs
}
