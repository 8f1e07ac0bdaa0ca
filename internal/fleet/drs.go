package fleet

import (
	"context"
	"fmt"
	"sort"

	"github.com/ksvla/lightagent/internal/vsphere"
)

// At a site, protected VMs in a fully automated DRS cluster move between
// its hosts all the time, and a moved VM's Light Agent looks for an SVM
// from its new host: the standard algorithm takes a compatible SVM on the
// same hypervisor and, when none is, the one with the fewest agents
// anywhere; the extended algorithm limits the scope (hypervisor, cluster,
// datacenter) and connects to nothing when no SVM is in it
// (https://support.kaspersky.com/KESL/12.1/en-US/272009.htm). So an old
// SVM may still be needed by an agent that is not on its host yet: the
// removal gate counts every agent DRS can move onto the host, whatever the
// algorithm (under the standard one that is more than needed while other
// old SVMs run; under the hypervisor scope it is exactly what is needed).

// DRSReader reads the clusters' DRS settings and the VMs of a scope
// (vsphere.Session).
type DRSReader interface {
	ClustersDRS(ctx context.Context, datacenter string) (map[string]vsphere.ClusterDRS, error)
	InventoryReader
}

// movable says, by MoRef value, which of the VMs DRS may move.
func movable(clusters map[string]vsphere.ClusterDRS, vmss ...[]VM) map[string]bool {
	out := map[string]bool{}
	for _, vms := range vmss {
		for _, v := range vms {
			if c, ok := clusters[v.Cluster]; ok {
				if moves, _ := c.Moves(v.Moid); moves {
					out[v.Moid] = true
				}
			}
		}
	}
	return out
}

func fromInventoryAll(inv []vsphere.VM) []VM {
	out := make([]VM, len(inv))
	for i, v := range inv {
		out[i] = fromInventory(v)
	}
	return out
}

func fromInventory(v vsphere.VM) VM {
	return VM{Name: v.Name, Moid: v.Moid, Host: v.Host, Cluster: v.Cluster, PowerState: v.PowerState,
		IP: v.IP, HostName: v.HostName, Marks: v.Marks}
}

// newAgent is the Light Agent KSC lists on h with product p.
func newAgent(h KSCHost, p Product, r Rules) Agent {
	a := Agent{Name: h.DisplayName, Product: p.Key, ProductName: p.DisplayName, OS: h.OS, Version: p.Version,
		KSCID: h.ID, IP: h.IP, SVMVersions: r.Compat.ServersOf(p, p.Version)}
	if a.Product == "" {
		a.Product = p.DisplayName
	}
	a.Updated = r.Compat.Serves(r.TargetVersion, p, a.Version)
	return a
}

// place puts the agent on its VM, with whether DRS may move it.
func (a *Agent) place(vm VM, r Rules) {
	a.Name, a.Host, a.Cluster = vm.Name, vm.Host, vm.Cluster
	if r.Movable != nil {
		movable := r.Movable[vm.Moid]
		a.DRSMovable = &movable
	}
}

// neighbours are the Light Agents on the VMs of r.Elsewhere that DRS may
// move.
func neighbours(idx *hostIndex, r Rules) []Agent {
	var out []Agent
	for _, vm := range r.Elsewhere {
		if !r.Movable[vm.Moid] {
			continue
		}
		h, _ := idx.match(vm)
		if h == nil {
			continue
		}
		if p, ok := findProduct(*h, r.LightAgent); ok {
			a := newAgent(*h, p, r)
			a.place(vm, r)
			out = append(out, a)
		}
	}
	return out
}

// movableByCluster indexes the agents (in scope and neighbours) that DRS
// may move, by cluster, sorted by host and name.
func (f Fleet) movableByCluster() map[string][]Agent {
	out := map[string][]Agent{}
	for _, as := range [][]Agent{f.Agents, f.Neighbours} {
		for _, a := range as {
			if a.Host != "" && a.Cluster != "" && a.DRSMovable != nil && *a.DRSMovable {
				out[a.Cluster] = append(out[a.Cluster], a)
			}
		}
	}
	for _, as := range out {
		sort.Slice(as, func(i, j int) bool {
			if as[i].Host != as[j].Host {
				return as[i].Host < as[j].Host
			}
			return as[i].Name < as[j].Name
		})
	}
	return out
}

// arrivals calls visit, in host and name order, for each Light Agent on
// another host of svm's cluster that DRS may move onto svm's host.
func (f Fleet) arrivals(svm SVM, visit func(Agent)) {
	if svm.Cluster == "" {
		return
	}
	index := f.movable
	if index == nil { // a Fleet not made by Build
		index = f.movableByCluster()
	}
	for _, a := range index[svm.Cluster] {
		if a.Host != svm.Host {
			visit(a)
		}
	}
}

// pendingArrivals counts the arrivals not updated yet.
func (f Fleet) pendingArrivals(svm SVM) int {
	n := 0
	f.arrivals(svm, func(a Agent) {
		if !a.Updated {
			n++
		}
	})
	return n
}

// arrivalsNeeding counts the arrivals that would need svm on its host (it
// serves them, or the table pairs them with no version, and no other SVM
// there does) and names the first reasonNames of them; seen counts every
// arrival. Only the names a reason shows are formatted: a cluster of
// thousands of agents is read for every SVM.
func (f Fleet) arrivalsNeeding(svm SVM, others []SVM) (named []string, needing, seen int) {
	// Whether an agent needs svm depends only on its product and version
	// (and on svm and others, fixed here): a cluster of thousands of
	// agents holds a few of those, so each is judged once.
	type kind struct {
		key, name string
		version   Version
		noRow     bool
	}
	verdicts := map[kind]bool{}
	f.arrivals(svm, func(a Agent) {
		seen++
		k := kind{a.Product, a.ProductName, a.Version, len(a.SVMVersions) == 0}
		need, ok := verdicts[k]
		if !ok {
			need = f.needs(svm, a, others)
			verdicts[k] = need
		}
		if !need {
			return
		}
		needing++
		if len(named) >= reasonNames {
			return
		}
		state := ""
		switch {
		case len(a.SVMVersions) == 0:
			state = ", in no row of compatibility"
		case !a.Updated && f.TargetVersion != "":
			state = ", not updated"
		}
		named = append(named, fmt.Sprintf("%s's %s (%s %s%s)", a.Host, a.Name, a.Product, a.Version, state))
	})
	return named, needing, seen
}

// needs reports whether agent a, on svm's host, would need svm: svm
// serves it (or the table pairs it with no version, so nothing proves
// another SVM can take it) and none of the others serves it now.
func (f Fleet) needs(svm SVM, a Agent, others []SVM) bool {
	if len(a.SVMVersions) > 0 && !f.Compat.Serves(svm.Version, a.product(), a.Version) {
		return false
	}
	for _, s := range others {
		if f.serves(s, a) {
			return false
		}
	}
	return true
}
