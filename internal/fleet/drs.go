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
// SVM may still be needed by an agent that is not on its host yet.
//
// Which SVMs such an agent reaches depends on the Light Agent policy,
// which the collection cannot read: the operator states it
// (Rules.AgentSelection). With the hypervisor scope (the default, as it
// assumes the least) every agent DRS can move onto the host keeps its old
// SVM. With the standard algorithm or the cluster scope an agent moved
// onto a host without a compatible SVM takes one elsewhere in the cluster,
// so one old SVM that serves it suffices: the anchor. Among the SVMs of
// the cluster that serve the agent, the anchor is the last in the order
// (a host's old SVM its own removal cannot pass yet - no prepared SVM of
// the target version there, e.g. a host left out of the run - after the
// others; then by name): the gate never releases the anchor for those
// agents, and releases every other SVM while the anchor runs. Every
// host's read holds its whole cluster, so hosts removing at once agree on
// the anchor; a removal is allowed only while a later SVM in that order
// runs, so the last one always stays. The order moves only when a held
// host's new SVM becomes prepared: in upgrade.yml that host then is not
// among those removing (its wave failed), so its old SVM stays for them;
// a second run preparing hosts of the same cluster at the same time could
// move it under the first one's removals. The standard algorithm reaches
// SVMs of other clusters too; the anchor is taken in the cluster anyway,
// because that is what every host's read holds.

// Agent selection algorithms of the Light Agent policy (Rules.AgentSelection).
const (
	SelectHypervisor = "hypervisor" // extended algorithm, scope hypervisor
	SelectStandard   = "standard"
	SelectCluster    = "cluster" // extended algorithm, scope cluster
)

// AgentSelections are the values Rules.AgentSelection takes, the default
// first.
var AgentSelections = []string{SelectHypervisor, SelectStandard, SelectCluster}

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

// pendingArrivals counts the arrivals not updated yet (all), and those
// svm stays for (keeping): with the standard or cluster selection, not
// those another anchor is kept for.
func (f Fleet) pendingArrivals(svm SVM) (all, keeping int) {
	anchor := f.anchorOf(svm)
	f.arrivals(svm, func(a Agent) {
		if a.Updated {
			return
		}
		all++
		if s, ok := anchor(a); !ok || s.Moid == svm.Moid {
			keeping++
		}
	})
	return all, keeping
}

// arrivalVerdict is what the agent gate says of the arrivals of one SVM.
type arrivalVerdict struct {
	named   []string // the first reasonNames of the arrivals needing svm
	needing int
	seen    int // every arrival
	// released counts the arrivals not updated that the anchors (by name)
	// are kept for instead of svm; anchorOfNeeding is svm itself when it
	// is the anchor of those needing it.
	released        int
	anchors         []string
	anchorOfNeeding bool
}

// agentKind is what the verdict on an arriving agent depends on besides
// the SVMs: a cluster of thousands of agents holds a few kinds, so each is
// judged once.
type agentKind struct {
	key, name string
	version   Version
	noRow     bool
}

func kindOf(a Agent) agentKind {
	return agentKind{a.Product, a.ProductName, a.Version, len(a.SVMVersions) == 0}
}

// arrivalsNeeding judges the arrivals of svm: those that would need svm
// on its host (it serves them, or the table pairs them with no version,
// and no other SVM there does, and no other anchor is kept for them).
// Only the names a reason shows are formatted: a cluster of thousands of
// agents is read for every SVM.
func (f Fleet) arrivalsNeeding(svm SVM, others []SVM) arrivalVerdict {
	var v arrivalVerdict
	verdicts := map[agentKind]bool{}
	anchor := f.anchorOf(svm)
	anchors := map[string]bool{}
	f.arrivals(svm, func(a Agent) {
		v.seen++
		k := kindOf(a)
		need, ok := verdicts[k]
		if !ok {
			need = f.needs(svm, a, others)
			verdicts[k] = need
		}
		if !need {
			return
		}
		if s, ok := anchor(a); ok {
			if s.Moid != svm.Moid {
				if !a.Updated {
					v.released++
					anchors[s.Name] = true
				}
				return
			}
			v.anchorOfNeeding = true
		}
		v.needing++
		if len(v.named) >= reasonNames {
			return
		}
		state := ""
		switch {
		case len(a.SVMVersions) == 0:
			state = ", in no row of compatibility"
		case !a.Updated && f.TargetVersion != "":
			state = ", not updated"
		}
		v.named = append(v.named, fmt.Sprintf("%s's %s (%s %s%s)", a.Host, a.Name, a.Product, a.Version, state))
	})
	for n := range anchors {
		v.anchors = append(v.anchors, n)
	}
	sort.Strings(v.anchors)
	return v
}

// anchorOf returns, for the agents DRS may move onto svm's host, the
// anchor of svm's cluster for each (see the top of this file): false under
// the hypervisor scope, or when no SVM of the cluster serves the agent.
func (f Fleet) anchorOf(svm SVM) func(Agent) (SVM, bool) {
	if (f.selection != SelectStandard && f.selection != SelectCluster) || svm.Cluster == "" {
		return func(Agent) (SVM, bool) { return SVM{}, false }
	}
	order := f.anchorOrder(svm.Cluster)
	memo := map[agentKind]int{}
	return func(a Agent) (SVM, bool) {
		k := kindOf(a)
		i, ok := memo[k]
		if !ok {
			i = -1
			for j := len(order) - 1; j >= 0; j-- {
				if f.serves(order[j], a) {
					i = j
					break
				}
			}
			memo[k] = i
		}
		if i < 0 {
			return SVM{}, false
		}
		return order[i], true
	}
}

// anchorOrder lists the SVMs of cluster c (in scope and nearby), the
// anchor candidates last: first those whose own removal may pass, by name,
// then those it cannot (no prepared SVM of the target version runs on
// their host: a host the run left out keeps its old SVM), by name.
func (f Fleet) anchorOrder(c string) []SVM {
	preparedOn := map[string]bool{}
	var out []SVM
	for _, ss := range [][]SVM{f.SVMs, f.nearby} {
		for _, s := range ss {
			if s.Cluster != c {
				continue
			}
			out = append(out, s)
			if s.Target && s.PowerState == "poweredOn" && s.Prepared {
				preparedOn[s.Host] = true
			}
		}
	}
	held := func(s SVM) bool { return s.Target || (f.TargetVersion != "" && !preparedOn[s.Host]) }
	sort.Slice(out, func(i, j int) bool {
		if hi, hj := held(out[i]), held(out[j]); hi != hj {
			return hj
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Moid < out[j].Moid
	})
	return out
}

// nearbySVMs recognises the SVMs among the VMs of Rules.Elsewhere.
func nearbySVMs(idx *hostIndex, r Rules) []SVM {
	var out []SVM
	for _, vm := range r.Elsewhere {
		h, _ := idx.match(vm)
		if s, ok := recognise(vm, h, r); ok {
			out = append(out, s)
		}
	}
	return out
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
