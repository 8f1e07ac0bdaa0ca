// Package fleet is the domain of the upgrade: which VMs are SVMs and of
// which Protection Server version, which protected VMs run which Light
// Agent, and, per hypervisor, whether the old SVMs may go. It joins what
// vCenter and KSC report; it does no I/O itself, so every rule is a plain
// function tested on its own.
package fleet

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// VM is one virtual machine as vCenter reports it.
type VM struct {
	Name       string            `json:"name"`
	Moid       string            `json:"moid"`
	Host       string            `json:"host"` // ESXi host name
	Cluster    string            `json:"cluster,omitempty"`
	PowerState string            `json:"power_state"` // poweredOn, poweredOff, suspended
	IP         string            `json:"ip,omitempty"`
	HostName   string            `json:"guest_hostname,omitempty"`
	Marks      map[string]string `json:"marks,omitempty"`
}

// PoweredOn reports whether the VM runs.
func (v VM) PoweredOn() bool { return v.PowerState == "poweredOn" }

// KSCHost is one KSC host record with the products the query asked about.
type KSCHost struct {
	ID          string    `json:"id"` // the record's id
	DisplayName string    `json:"display_name"`
	DNSName     string    `json:"dns_name,omitempty"`
	FQDN        string    `json:"fqdn,omitempty"`
	IP          string    `json:"ip,omitempty"`
	Visible     bool      `json:"visible"`
	OS          string    `json:"os,omitempty"`
	Products    []Product `json:"products,omitempty"`
	// Activated: KSC shows the host's application licensed (see
	// ksc.Host). BasesDate: its anti-virus databases date (RFC 3339),
	// "" when it has none.
	Activated bool   `json:"activated"`
	BasesDate string `json:"bases_date,omitempty"`
}

// Product is an application KSC reports on a host.
type Product struct {
	Key         string  `json:"key"`
	Version     Version `json:"version"`
	DisplayName string  `json:"display_name,omitempty"`
}

// Rules say how to recognise things; the zero value is not useful, start
// from DefaultRules.
type Rules struct {
	// TargetVersion is the Protection Server version being rolled out.
	TargetVersion Version
	// ProtectionServer and LightAgent match KSC products by key or by
	// display name (exact, case-insensitive). The real product keys are not
	// documented by the vendor, so they are options.
	ProtectionServer []string
	LightAgent       []string
	// SVMNamePattern selects unmarked VMs that may be SVMs deployed by the
	// vendor's wizard; they are recognised only when KSC lists the
	// Protection Server on them or a klconfig probe answered.
	SVMNamePattern *regexp.Regexp
	// Probes holds klconfig `version` answers by VM name, for VMs probed.
	Probes map[string]Version
	// NarrowedScope says the VMs were read for some hosts or a cluster
	// only: a KSC record that matches none of them belongs elsewhere, not
	// to this answer (set by Observe).
	NarrowedScope bool
	// NotProtected names VMs the operator says carry no Light Agent: they
	// do not block a removal although KSC does not list them as agents.
	NotProtected []string
	// MarkRole/MarkVersion name the custom attributes svm_deploy writes and
	// RoleSVM is the role value that marks an SVM.
	MarkRole, MarkVersion, RoleSVM string
	// Compat says which agents each Protection Server version serves.
	Compat Compat
	// MarkHost names the custom attribute holding an SVM's own host.
	MarkHost string
	// Pins holds how each SVM is pinned to its host, by MoRef value, for
	// SVMs whose placement was read.
	Pins map[string]Pin
	// Movable holds, by MoRef value, the VMs fully automated DRS may move
	// between the hosts of their cluster; nil when DRS was not read (see
	// drs.go). Elsewhere are the VMs of the same clusters on hosts outside
	// the scope: their agents may be moved onto the hosts in it.
	Movable   map[string]bool
	Elsewhere []VM
	// AgentSelection is the SVM selection algorithm of the Light Agent
	// policy, as the operator states it (KSC's policy is not read):
	// SelectHypervisor (also ""), SelectStandard or SelectCluster. It
	// decides which agents DRS may move onto a host need its old SVM
	// (drs.go).
	AgentSelection string
}

// Recognition sources, strongest first.
const (
	ByMarks    = "marks"
	ByKSC      = "ksc_product"
	ByKlconfig = "klconfig_probe"
)

// SVM is a VM positively recognised as an SVM.
type SVM struct {
	Name         string  `json:"name"`
	Moid         string  `json:"moid"`
	Host         string  `json:"host"`
	Version      Version `json:"version"`
	PowerState   string  `json:"power_state"`
	IP           string  `json:"ip,omitempty"`
	RecognisedBy string  `json:"recognised_by"`
	KSCID        string  `json:"ksc_id,omitempty"`
	KSCName      string  `json:"ksc_name,omitempty"`
	FQDN         string  `json:"fqdn,omitempty"`
	KSCVisible   bool    `json:"ksc_visible"`
	Target       bool    `json:"target"` // of the target version's line
	// Activated and DatabasesDate are what KSC shows; Prepared is both,
	// the state the vendor's step 4 leaves a new SVM in.
	Activated     bool   `json:"activated"`
	DatabasesDate string `json:"databases_date,omitempty"`
	Prepared      bool   `json:"prepared"`
	Cluster       string `json:"cluster,omitempty"`
	SVMPlacement
}

// Agent is a protected VM with a Light Agent.
type Agent struct {
	Name    string `json:"name"`
	Host    string `json:"host,omitempty"` // empty when no VM matched
	Product string `json:"product"`        // KSC product key (or display name)
	// ProductName is the display name KSC gave, when it gave one.
	ProductName string  `json:"product_name,omitempty"`
	OS          string  `json:"os,omitempty"` // as KSC reports the guest OS
	Version     Version `json:"version"`
	KSCID       string  `json:"ksc_id"`
	IP          string  `json:"ip,omitempty"`
	// SVMVersions are the Protection Server versions of the compatibility
	// table that serve this agent; empty when the table knows none.
	SVMVersions []string `json:"svm_versions"`
	Updated     bool     `json:"updated"` // served by the target version
	// Protected: a compatible, activated SVM runs on its host; null when
	// the agent is Unplaced (its host is unknown, so is its protection).
	Protected *bool `json:"protected"`
	// Unplaced: KSC lists the agent but no VM in scope matches it (on
	// another site, or gone).
	Unplaced bool     `json:"unplaced,omitempty"`
	ServedBy []string `json:"served_by,omitempty"`
	Cluster  string   `json:"cluster,omitempty"`
	// DRSMovable: fully automated DRS may move the VM to another host of
	// its cluster (no DRS VM override holds it); nil when not read.
	DRSMovable *bool `json:"drs_movable,omitempty"`
}

func (a Agent) product() Product { return Product{Key: a.Product, DisplayName: a.ProductName} }

// serves reports whether SVM s serves agent a now: powered on, activated
// in KSC (an agent prefers, and the lab demands, an activated SVM) and
// of a version the compatibility table pairs with the agent.
func (f Fleet) serves(s SVM, a Agent) bool {
	return s.PowerState == "poweredOn" && s.Activated && f.Compat.Serves(s.Version, a.product(), a.Version)
}

// Hypervisor is the upgrade state of one ESXi host.
type Hypervisor struct {
	Name             string              `json:"name"`
	SVMs             map[string][]string `json:"svms"` // version -> SVM names
	Agents           map[string]int      `json:"agents"`
	AgentsPending    []string            `json:"agents_pending"`
	Unprotected      []string            `json:"unprotected"`
	TargetSVMRunning bool                `json:"target_svm_running"`
	// TargetSVMPrepared: a running SVM of the target version is activated
	// and has databases in KSC.
	TargetSVMPrepared bool              `json:"target_svm_prepared"`
	Ready             bool              `json:"ready"`
	RemovableSVMs     []string          `json:"removable_svms"`
	BlockedRemovals   map[string]string `json:"blocked_removals,omitempty"` // SVM -> reason
	// Problems a person must see: an SVM moved away, off, or unpinned.
	Problems []string `json:"problems"`
	// AgentsMayArrive counts the Light Agents not updated yet on other
	// hosts of the DRS cluster that DRS may move onto this one, while it
	// carries an SVM of an old version. ArrivalsKeepingOldSVM are those its
	// removal waits for: all of them under the hypervisor selection, under
	// the standard or cluster one those its old SVM is the anchor for
	// (drs.go).
	AgentsMayArrive       int `json:"agents_may_arrive"`
	ArrivalsKeepingOldSVM int `json:"arrivals_keeping_old_svm"`
}

// Summary counts the fleet.
type Summary struct {
	SVMsByVersion   map[string]int `json:"svms_by_version"`
	AgentsByVersion map[string]int `json:"agents_by_version"`
	AgentsPending   int            `json:"agents_pending"`
	Unprotected     int            `json:"unprotected"`
	HostsReady      int            `json:"hosts_ready"`
	// AgentsUnplaced are agents KSC lists that no VM in scope matches;
	// AgentsOutsideScope those left out because the scope names hosts or
	// a cluster (NarrowedScope).
	AgentsUnplaced     int `json:"agents_unplaced"`
	AgentsOutsideScope int `json:"agents_outside_scope"`
	Hosts              int `json:"hosts"`
	Problems           int `json:"problems"`
}

// Fleet is the joined view.
type Fleet struct {
	TargetVersion Version         `json:"target_version"`
	Compat        Compat          `json:"compatibility"`
	SVMs          []SVM           `json:"svms"`
	Agents        []Agent         `json:"agents"`
	Hypervisors   []Hypervisor    `json:"hypervisors"`
	Summary       Summary         `json:"summary"`
	ReadyToRemove map[string]bool `json:"ready_to_remove"` // old version -> every host ready
	Candidates    []string        `json:"unrecognised_candidates"`
	Ambiguous     []string        `json:"ambiguous_matches"`
	Unmatched     []string        `json:"unmatched_ksc_hosts"`
	ProbeErrors   []string        `json:"probe_errors,omitempty"` // VMs that did not answer as SVMs
	// Unknown are VMs on the hypervisors that are neither a recognised SVM
	// nor a Light Agent KSC lists with its version: they may need an SVM
	// nobody can tell, so they block removals on their host.
	Unknown []UnknownVM `json:"unknown_vms"`
	// Neighbours are the Light Agents of Rules.Elsewhere that DRS may move
	// into the scope: only the removal gates read them.
	Neighbours []Agent `json:"-"`
	// movable indexes the agents DRS may move by cluster, sorted by host
	// and name: the gates of every SVM read it (drs.go), so it is built
	// once, not scanned per SVM (64 hosts x 4096 agents made facts 3x
	// slower).
	movable map[string][]Agent
	// selection is Rules.AgentSelection; nearby are the SVMs recognised
	// among Rules.Elsewhere: with the standard or cluster selection an
	// agent moved onto a host may use them (drs.go).
	selection string
	nearby    []SVM
}

// UnknownVM is a VM whose protection cannot be read.
type UnknownVM struct {
	Name   string `json:"name"`
	Host   string `json:"host"`
	Reason string `json:"reason"`
}

// Build joins vCenter's VMs and KSC's hosts under the rules.
func Build(vms []VM, hosts []KSCHost, r Rules) Fleet {
	f := Fleet{TargetVersion: r.TargetVersion, Compat: r.Compat, ReadyToRemove: map[string]bool{}, Unknown: []UnknownVM{}}
	idx := newHostIndex(hosts)
	matched := map[string]bool{}
	vmByHostID := map[string]VM{}

	for _, vm := range vms {
		h, ambiguous := idx.match(vm)
		if len(ambiguous) > 1 {
			f.Ambiguous = append(f.Ambiguous, fmt.Sprintf("VM %s matches %d KSC hosts: %s", vm.Name, len(ambiguous), strings.Join(ambiguous, ", ")))
		}
		if h != nil {
			matched[h.ID] = true
			vmByHostID[h.ID] = vm
		}
		if svm, ok := recognise(vm, h, r); ok {
			f.SVMs = append(f.SVMs, svm)
			continue
		}
		if u, ok := unknown(vm, h, r); ok {
			f.Unknown = append(f.Unknown, u)
		}
		if r.SVMNamePattern != nil && r.SVMNamePattern.MatchString(vm.Name) {
			f.Candidates = append(f.Candidates, vm.Name)
		}
	}
	outside := 0
	for _, h := range hosts {
		p, ok := findProduct(h, r.LightAgent)
		if !ok {
			if !matched[h.ID] && !hasProduct(h, r.ProtectionServer) {
				continue
			}
			if !matched[h.ID] && !r.NarrowedScope {
				f.Unmatched = append(f.Unmatched, h.DisplayName)
			}
			continue
		}
		a := newAgent(h, p, r)
		if vm, ok := vmByHostID[h.ID]; ok {
			a.place(vm, r)
		} else if r.NarrowedScope {
			outside++
			continue
		} else {
			a.Unplaced = true
			f.Unmatched = append(f.Unmatched, h.DisplayName)
		}
		f.Agents = append(f.Agents, a)
	}
	f.Neighbours = neighbours(idx, r)
	f.movable = f.movableByCluster()
	f.selection, f.nearby = r.AgentSelection, nearbySVMs(idx, r)
	f.computeHypervisors(r)
	f.Summary.AgentsOutsideScope = outside
	sortFleet(&f)
	return f
}

// unknown tells whether vm, not an SVM, is a VM whose Light Agent KSC
// cannot vouch for: not in KSC at all (a powered-off VM KSC's retention
// removed, a VM vMotioned in from another site), or listed without a
// Light Agent version. Unless the operator says it carries none, it may
// need the SVM of its host.
func unknown(vm VM, h *KSCHost, r Rules) (UnknownVM, bool) {
	for _, n := range r.NotProtected {
		// Shell patterns too: vSphere names some appliances itself (vCLS-*).
		if ok, _ := path.Match(strings.ToLower(n), strings.ToLower(vm.Name)); ok || strings.EqualFold(n, vm.Name) {
			return UnknownVM{}, false
		}
	}
	u := UnknownVM{Name: vm.Name, Host: vm.Host}
	if h == nil {
		u.Reason = "not in KSC"
		return u, true
	}
	p, ok := findProduct(*h, r.LightAgent)
	switch {
	case !ok:
		u.Reason = "in KSC without a Light Agent"
	case p.Version == "":
		u.Reason = "in KSC without a Light Agent version"
	default:
		return UnknownVM{}, false
	}
	return u, true
}

func recognise(vm VM, h *KSCHost, r Rules) (SVM, bool) {
	s := SVM{Name: vm.Name, Moid: vm.Moid, Host: vm.Host, PowerState: vm.PowerState, IP: vm.IP, Cluster: vm.Cluster}
	if h != nil {
		s.KSCID, s.KSCName, s.FQDN, s.KSCVisible = h.ID, h.DisplayName, h.FQDN, h.Visible
		s.Activated, s.DatabasesDate = h.Activated, h.BasesDate
		s.Prepared = s.Activated && s.DatabasesDate != ""
	}
	switch {
	case r.MarkRole != "" && vm.Marks[r.MarkRole] == r.RoleSVM && r.RoleSVM != "":
		s.RecognisedBy, s.Version = ByMarks, Version(vm.Marks[r.MarkVersion])
	case h != nil && hasProduct(*h, r.ProtectionServer):
		p, _ := findProduct(*h, r.ProtectionServer)
		s.RecognisedBy, s.Version = ByKSC, p.Version
	case r.Probes[vm.Name] != "" && (r.SVMNamePattern == nil || r.SVMNamePattern.MatchString(vm.Name)):
		s.RecognisedBy, s.Version = ByKlconfig, r.Probes[vm.Name]
	default:
		return SVM{}, false
	}
	s.Target = s.Version.Line() == r.TargetVersion.Line()
	s.SVMPlacement = placement(vm, r)
	return s, true
}

func (f *Fleet) computeHypervisors(r Rules) {
	byName := map[string]*Hypervisor{}
	get := func(name string) *Hypervisor {
		if h, ok := byName[name]; ok {
			return h
		}
		h := &Hypervisor{Name: name, SVMs: map[string][]string{}, Agents: map[string]int{},
			AgentsPending: []string{}, Unprotected: []string{}, RemovableSVMs: []string{}, Problems: []string{}}
		byName[name] = h
		return h
	}
	svmsOn := map[string][]SVM{}
	for _, s := range f.SVMs {
		h := get(s.Host)
		h.SVMs[string(s.Version)] = append(h.SVMs[string(s.Version)], s.Name)
		svmsOn[s.Host] = append(svmsOn[s.Host], s)
		if s.Target && s.PowerState == "poweredOn" {
			h.TargetSVMRunning = true
			h.TargetSVMPrepared = h.TargetSVMPrepared || s.Prepared
		}
	}
	unplaced := 0
	for i := range f.Agents {
		a := &f.Agents[i]
		if a.Host == "" {
			unplaced++
			continue
		}
		h := get(a.Host)
		h.Agents[string(a.Version)]++
		for _, s := range svmsOn[a.Host] {
			if f.serves(s, *a) {
				a.ServedBy = append(a.ServedBy, s.Name)
			}
		}
		protected := len(a.ServedBy) > 0
		a.Protected = &protected
		if !a.Updated {
			h.AgentsPending = append(h.AgentsPending, a.Name)
		}
		if !protected {
			h.Unprotected = append(h.Unprotected, a.Name)
		}
	}
	for _, s := range f.SVMs {
		if ps := s.Problems(); len(ps) > 0 {
			get(s.Own()).Problems = append(get(s.Own()).Problems, ps...)
		}
	}
	f.Summary = Summary{SVMsByVersion: map[string]int{}, AgentsByVersion: map[string]int{}, AgentsUnplaced: unplaced}
	oldVersions := map[string]bool{}
	for _, h := range byName {
		h.BlockedRemovals = map[string]string{}
		for _, s := range svmsOn[h.Name] {
			if s.Target {
				continue
			}
			h.AgentsMayArrive, h.ArrivalsKeepingOldSVM = f.pendingArrivals(s)
			oldVersions[string(s.Version)] = true
			if g := Gates(*f, s); g.Passed() {
				h.RemovableSVMs = append(h.RemovableSVMs, s.Name)
			} else {
				h.BlockedRemovals[s.Name] = g.Reason()
			}
		}
		h.Ready = h.TargetSVMPrepared && len(h.AgentsPending) == 0 && h.ArrivalsKeepingOldSVM == 0
		if len(h.BlockedRemovals) == 0 {
			h.BlockedRemovals = nil
		}
		sort.Strings(h.RemovableSVMs)
		sort.Strings(h.AgentsPending)
		sort.Strings(h.Unprotected)
		f.Hypervisors = append(f.Hypervisors, *h)
		f.Summary.AgentsPending += len(h.AgentsPending)
		f.Summary.Unprotected += len(h.Unprotected)
		f.Summary.Problems += len(h.Problems)
		if h.Ready {
			f.Summary.HostsReady++
		}
	}
	f.Summary.Hosts = len(f.Hypervisors)
	for _, s := range f.SVMs {
		f.Summary.SVMsByVersion[string(s.Version)]++
	}
	for _, a := range f.Agents {
		f.Summary.AgentsByVersion[string(a.Version)]++
	}
	for v := range oldVersions {
		ready := true
		for _, h := range byName {
			if len(h.SVMs[v]) > 0 && !h.Ready {
				ready = false
			}
		}
		f.ReadyToRemove[v] = ready
	}
}

func sortFleet(f *Fleet) {
	sort.Slice(f.Unknown, func(i, j int) bool {
		if f.Unknown[i].Host != f.Unknown[j].Host {
			return f.Unknown[i].Host < f.Unknown[j].Host
		}
		return f.Unknown[i].Name < f.Unknown[j].Name
	})
	sort.Slice(f.SVMs, func(i, j int) bool {
		if f.SVMs[i].Host != f.SVMs[j].Host {
			return f.SVMs[i].Host < f.SVMs[j].Host
		}
		return f.SVMs[i].Name < f.SVMs[j].Name
	})
	sort.Slice(f.Agents, func(i, j int) bool { return f.Agents[i].Name < f.Agents[j].Name })
	sort.Slice(f.Hypervisors, func(i, j int) bool { return f.Hypervisors[i].Name < f.Hypervisors[j].Name })
	sort.Strings(f.Candidates)
	sort.Strings(f.Ambiguous)
	sort.Strings(f.Unmatched)
}

func findProduct(h KSCHost, names []string) (Product, bool) {
	for _, p := range h.Products {
		for _, n := range names {
			if strings.EqualFold(p.Key, n) || strings.EqualFold(p.DisplayName, n) {
				return p, true
			}
		}
	}
	return Product{}, false
}

func hasProduct(h KSCHost, names []string) bool {
	_, ok := findProduct(h, names)
	return ok
}

// Default product names. The vendor does not document the KSC product key
// of the Protection Server (NOT FOUND), so that default is the lab's name
// plus the display name; users of a real KSC set the module option. The
// Light Agents are Kaspersky Endpoint Security for Windows and for Linux
// in Light Agent mode: KSC lists them under "KES" (its product table) and
// "kesl" (as KSC reports KESL hosts).
var (
	DefaultProtectionServer = []string{"KSVLA-PS", "Kaspersky Security for Virtualization Light Agent Protection Server"}
	DefaultLightAgent       = []string{"KES", "kesl", "Kaspersky Endpoint Security for Windows", "Kaspersky Endpoint Security for Linux"}
)
