// Package agentfacts is the agent_facts module: every SVM and Light Agent
// of the fleet with their versions, and per hypervisor whether the old
// SVMs may go. It is the gate of the upgrade, and read-only.
package agentfacts

import (
	"context"
	"fmt"
	"strings"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/klconfig"
	"github.com/ksvla/lightagent/modules/conn"
)

// module is agent_facts' phases; one value per run, holding its sessions.
type module struct {
	conn.Sessions
	// inv, when set, also takes the fleet and where each ESXi host is, for
	// the inventory (see Inventory).
	inv *inventoryRead
}

// call is one run of agent_facts.
type call = ansible.Call[Options]

// New returns the module.
func New() ansible.Module { return typed(&module{}) }

func typed(m *module) ansible.Module { return ansible.Typed[Options, observed, ansible.NoChange](m) }

// Spec returns the option spec.
func (*module) Spec() ansible.Spec { return spec() }

// observed is the fleet as read, with how it was read; agent_facts is
// read-only, so it returns the values.
type observed struct {
	fleet fleet.Fleet
	trips int          // vCenter round trips
	cache *cacheResult // with the cache option
}

// Report is the module's return values (the fleet itself goes to the facts).
func (o observed) Report() map[string]any {
	// One record per protected VM is most of the output on a large fleet
	// (16k VMs: about 4 MB). As a fact Ansible would copy it into every
	// later task's variables and AWX into its fact cache; plays use the
	// hypervisors' counts and pending lists, so the list is a plain result
	// for whoever registers it, as vmware_vm_info returns its VMs.
	r := map[string]any{"agents": o.fleet.Agents, "round_trips": map[string]any{"vcenter": o.trips}}
	if o.cache != nil {
		r["cache"] = *o.cache
	}
	return r
}

// Observe reads vCenter and KSC, builds the fleet and returns it as facts.
func (m *module) Observe(ctx context.Context, c *call) (observed, error) {
	o := c.Options
	rules, err := o.Rules()
	if err != nil {
		return observed{}, err
	}
	var (
		obs  observed
		snap fleet.Snapshot
	)
	if o.Cache != nil {
		// The whole scope, once per interval for every caller; each one
		// keeps its own hosts below.
		whole := o
		whole.ESXiHostnames = nil
		var hit cacheResult
		snap, hit, err = readThrough(ctx, *o.Cache, cacheKey(o), func() (fleet.Snapshot, error) {
			s, n, err := m.read(ctx, whole, rules)
			obs.trips = n
			return s, err
		})
		obs.cache = &hit
	} else {
		snap, obs.trips, err = m.read(ctx, o, rules)
	}
	if err != nil {
		return observed{}, err
	}
	f := snap.Build(o.ESXiHostnames, rules)
	obs.fleet = f
	if m.inv != nil {
		if err := m.inv.take(ctx, m, o, f); err != nil {
			return observed{}, err
		}
	}
	for _, e := range f.ProbeErrors {
		c.Warn("klconfig probe failed, VM not counted as an SVM: " + e)
	}
	for _, a := range f.Ambiguous {
		c.Warn("ambiguous KSC match, not guessed: " + a)
	}
	for _, w := range compatWarnings(f) {
		c.Warn(w)
	}
	for _, h := range f.Hypervisors {
		for _, p := range h.Problems {
			c.Warn(h.Name + ": " + p)
		}
	}
	c.Facts = map[string]any{"ksvla": factsView{Fleet: f}}
	c.Msg = summary(f)
	return obs, nil
}

// read logs in to vCenter and KSC (the run's sessions) and reads what the
// fleet is built from, returning the vCenter round trips it took.
func (m *module) read(ctx context.Context, o Options, rules fleet.Rules) (fleet.Snapshot, int, error) {
	if _, err := o.VCenterOptions.Login(); err != nil {
		return fleet.Snapshot{}, 0, err // before KSC, so a missing vCenter option is reported first
	}
	ko := o.KSCOptions
	ko.PageSize = o.PageSize
	kc, err := m.KSC(ko)
	if err != nil {
		return fleet.Snapshot{}, 0, err
	}
	vc, err := m.VCenter(ctx, o.VCenterOptions)
	if err != nil {
		return fleet.Snapshot{}, 0, err
	}
	src := fleet.Sources{KSC: kc, Placements: vc, DRS: vc} // DRS reads the inventory too: a narrowed scope in one pass
	if o.Probe {
		src.Prober = &prober{opts: o}
	}
	snap, err := fleet.Read(ctx, src, o.Scope(), rules)
	return snap, int(vc.RoundTrips()), err
}

// factsView is the fleet without its per-agent list (returned beside
// the facts): for encoding/json the outer field, always nil and so
// omitted, hides the embedded one of the same name.
type factsView struct {
	fleet.Fleet
	Agents []fleet.Agent `json:"agents,omitempty"`
}

// Plan is always empty: agent_facts changes nothing.
func (*module) Plan(*call, observed) (ansible.NoChange, error) {
	return ansible.NoChange{}, nil
}

// compatWarnings say where the compatibility table is silent: no Light
// Agent counts as updated without a row for the target version, and an
// agent in no row is never served.
func compatWarnings(f fleet.Fleet) []string {
	var out []string
	if len(f.Agents) > 0 && !f.Compat.Knows(f.TargetVersion) {
		out = append(out, fmt.Sprintf("compatibility has no row for Protection Server %s: no Light Agent counts as updated; add the agent versions it serves", f.TargetVersion))
	}
	var none []string
	for _, a := range f.Agents {
		if len(a.SVMVersions) == 0 {
			none = append(none, fmt.Sprintf("%s (%s %s)", a.Name, a.Product, a.Version))
		}
	}
	if len(none) > 0 {
		shown := none
		if len(shown) > 5 {
			shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(none)-5))
		}
		out = append(out, fmt.Sprintf("%d Light Agent(s) are in no row of compatibility, so no SVM serves them: %s", len(none), strings.Join(shown, ", ")))
	}
	return out
}

func summary(f fleet.Fleet) string {
	msg := fmt.Sprintf("%d/%d hypervisors ready for %s; %d SVMs, %d Light Agents, %d pending, %d unprotected",
		f.Summary.HostsReady, f.Summary.Hosts, f.TargetVersion, len(f.SVMs), len(f.Agents), f.Summary.AgentsPending, f.Summary.Unprotected)
	if f.Summary.Problems > 0 {
		msg += fmt.Sprintf("; %d SVM problems (moved, off or unpinned)", f.Summary.Problems)
	}
	return msg
}

// prober asks a VM for its Protection Server version over klconfig.
type prober struct{ opts Options }

func (p *prober) ProbeVersion(ctx context.Context, ip string) (string, error) {
	policy := map[string]klconfig.HostKeyPolicy{"strict": klconfig.HostKeyStrict, "accept_new": klconfig.HostKeyAcceptNew, "off": klconfig.HostKeyOff}[p.opts.HostKeyCheck]
	r, err := klconfig.NewSSHRunner(klconfig.SSHConfig{Addr: ip, Password: p.opts.ProbePassword, HostKey: policy, KnownHostsFile: p.opts.KnownHosts})
	if err != nil {
		return "", err
	}
	res, err := klconfig.New(r).Do(ctx, klconfig.Version())
	if err != nil {
		return "", err
	}
	if len(res.Lines) == 0 {
		return "", fmt.Errorf("klconfig version on %s printed no version", ip)
	}
	return strings.TrimSpace(res.Lines[0]), nil
}
