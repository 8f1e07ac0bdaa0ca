// Package svmremove is the svm_remove module, step 5 of the upgrade: it
// shuts down and deletes SVMs of a previous Protection Server version, only
// when fleet's gates say no protected VM can lose its protection by it.
package svmremove

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/ksvla/lightagent/modules/conn"
)

// module is svm_remove's phases; one value per run, holding its sessions.
type module struct {
	// rules are what Observe derived from the options, for Apply's
	// re-checks.
	rules fleet.Rules
	conn.Sessions
}

// call is one run of svm_remove.
type call = ansible.Call[Options]

// Apply must match Applies, or the runtime would refuse every change.
var _ ansible.Applies[Options, *Plan] = (*module)(nil)

// New returns the module.
func New() ansible.Module { return ansible.Typed[Options, observed, *Plan](&module{}) }

// Spec returns the option spec.
func (*module) Spec() ansible.Spec { return spec() }

// sessions logs in to vCenter and, when its options are given, to KSC (a
// nil client otherwise). Without KSC the Light Agents are unknown, so the
// agent gate cannot be checked: that is only allowed with force.
func (m *module) sessions(ctx context.Context, o Options) (fleet.Sources, *vsphere.Session, error) {
	if !o.KSCOptions.Given() && !o.Force {
		return fleet.Sources{}, nil, errors.New("the Light Agent gate needs KSC: set ksc_url, ksc_username and ksc_password (or export KSC_URL, KSC_USERNAME, KSC_PASSWORD), or set force=true to remove without checking Light Agents")
	}
	if _, err := o.VCenterOptions.Login(); err != nil {
		return fleet.Sources{}, nil, err // before KSC, so a missing vCenter option is reported first
	}
	var src fleet.Sources
	if o.KSCOptions.Given() {
		// Only a non-nil client: a nil *ksc.Client in the interface would
		// look like a KSC to fleet.Observe.
		c, err := m.KSC(o.KSCOptions)
		if err != nil {
			return fleet.Sources{}, nil, err
		}
		src.KSC = c
	}
	vc, err := m.VCenter(ctx, o.VCenterOptions)
	if err != nil {
		return fleet.Sources{}, nil, err
	}
	// DRS reads the VMs it may move onto the hosts in scope itself, not
	// through observe's recorder of the scope's VMs.
	src.Inventory, src.DRS = vc, vc
	return src, vc, nil
}

// observe reads the fleet, keeping the inventory it was built from.
func (m *module) observe(ctx context.Context, o Options) (fleet.Fleet, []vsphere.VM, *vsphere.Session, error) {
	src, vc, err := m.sessions(ctx, o)
	if err != nil {
		return fleet.Fleet{}, nil, nil, err
	}
	rec := &recorder{inv: src.Inventory}
	src.Inventory = rec
	f, err := fleet.Observe(ctx, src, o.Scope(), m.rules)
	return f, rec.vms, vc, err
}

// recorder passes Inventory through and keeps its answer, so selection by
// name sees the VMs the fleet does not list (protected VMs without a
// Light Agent, unrelated VMs) without a second pass.
type recorder struct {
	inv fleet.InventoryReader
	vms []vsphere.VM
}

func (r *recorder) Inventory(ctx context.Context, sc vsphere.Scope) ([]vsphere.VM, error) {
	vms, err := r.inv.Inventory(ctx, sc)
	r.vms = vms
	return vms, err
}

// Observe reads the fleet in scope and the VMs the selected names denote.
func (m *module) Observe(ctx context.Context, c *call) (observed, error) {
	o := c.Options
	var err error
	if m.rules, err = o.Rules(); err != nil {
		return observed{}, err
	}
	if o.Version != "" {
		if err := fleet.CheckVersion("version", o.Version); err != nil {
			return observed{}, err
		}
	}
	f, vms, vc, err := m.observe(ctx, o)
	if err != nil {
		return observed{}, err
	}
	obs := observed{Fleet: f, InScope: byName(vms), Outside: map[string][]string{}}
	if missing := missingNames(o, obs); len(missing) > 0 && (o.Cluster != "" || len(o.ESXiHostnames) > 0) {
		// A name outside a narrowed scope is not "absent": say where it is
		// instead of reporting success for a VM that still runs.
		all, err := vc.Inventory(ctx, vsphere.Scope{Datacenter: o.Datacenter})
		if err != nil {
			return observed{}, err
		}
		for _, v := range all {
			if slices.Contains(missing, v.Name) {
				obs.Outside[v.Name] = append(obs.Outside[v.Name], v.Host)
			}
		}
	}
	for _, a := range f.Ambiguous {
		c.Warn("ambiguous KSC match, not guessed: " + a)
	}
	if o.Version != "" && len(f.Candidates) > 0 {
		c.Warn("unrecognised SVM candidates are never removed (their version is unknown): " + strings.Join(f.Candidates, ", "))
	}
	if o.Force {
		c.Warn("force=true: the Light Agent, preparation and unknown-VM gates are skipped; the replacement and last-SVM gates still apply")
	}
	return obs, nil
}

func byName(vms []vsphere.VM) map[string][]vmRef {
	out := map[string][]vmRef{}
	for _, v := range vms {
		out[v.Name] = append(out[v.Name], vmRef{Moid: v.Moid, Host: v.Host})
	}
	return out
}

// missingNames are the selected names no VM in scope carries.
func missingNames(o Options, obs observed) []string {
	var out []string
	for _, n := range o.selected() {
		if len(obs.InScope[n]) == 0 {
			out = append(out, n)
		}
	}
	return out
}

// Plan selects the SVMs and checks every gate before anything is touched.
func (*module) Plan(c *call, obs observed) (*Plan, error) {
	o := c.Options
	p, err := plan(o, obs)
	if err != nil {
		// Returned with the error: the runtime reports it, so a refused
		// run still says what it found blocked.
		return p, err
	}
	for _, it := range p.Remove {
		for _, g := range it.Gates {
			if g.Skipped {
				c.Warn(fmt.Sprintf("force=true: %s on %s passes although %s", it.Name, it.Host, g.Reason))
			}
		}
	}
	switch {
	case p.Empty() && o.Version != "":
		c.Msg = fmt.Sprintf("no SVM of version %s in scope; nothing to remove", o.Version)
	case p.Empty():
		c.Msg = "nothing to remove; absent: " + strings.Join(p.Absent, ", ")
	case c.CheckMode:
		for _, it := range p.Remove {
			it.WouldRemove = true
			p.Removed = append(p.Removed, it)
		}
		c.Msg = "would remove " + list(p.Remove)
	}
	return p, nil
}

func list(items []Item) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = fmt.Sprintf("%s (%s on %s)", it.Name, it.Version, it.Host)
	}
	return fmt.Sprintf("%d SVM(s): %s", len(items), strings.Join(parts, ", "))
}

// Apply removes the planned SVMs one by one, recording in the plan what it
// removed and found gone. Before each, it observes the fleet again and
// re-runs the gates, because the world moves between plan and removal (an
// agent update, a new SVM powered off); the first SVM that no longer
// passes stops the run, the ones after it untouched.
func (m *module) Apply(ctx context.Context, c *call, p *Plan) error {
	o := c.Options
	gone := map[string]bool{}
	untouched := func(i int) string {
		if i+1 >= len(p.Remove) {
			return "none"
		}
		names := make([]string, 0, len(p.Remove)-i-1)
		for _, it := range p.Remove[i+1:] {
			names = append(names, it.Name)
		}
		return strings.Join(names, ", ")
	}
	for i, it := range p.Remove {
		f, vms, vc, err := m.observe(ctx, o)
		if err != nil {
			return fmt.Errorf("re-check gates before removing %s: %w", it.Name, err)
		}
		// Removed VMs are gone from vCenter already; dropping them again
		// guards against an inventory that lags behind the deletion.
		f = without(f, gone)
		s, ok := findSVM(f, it.Moid)
		if !ok {
			if slices.ContainsFunc(vms, func(v vsphere.VM) bool { return v.Moid == it.Moid }) {
				return fmt.Errorf("%s on %s is no longer recognised as an SVM: not touched; also not touched: %s", it.Name, it.Host, untouched(i))
			}
			p.Absent = append(p.Absent, it.Name) // removed by someone else meanwhile
			continue
		}
		g := gatesFor(f, s, o.Force)
		if !g.Passed() {
			p.Blocked = []Blocked{{Name: s.Name, Host: s.Host, Version: s.Version, Reason: g.Reason(), Gates: g}}
			return fleet.BlockedAtRemovalError(s, g, untouched(i))
		}
		if err := vc.RemoveVM(ctx, it.Moid, time.Duration(o.ShutdownTimeout)*time.Second); err != nil {
			if errors.Is(err, vsphere.ErrNotFound) {
				p.Absent = append(p.Absent, it.Name)
				continue
			}
			return fmt.Errorf("remove SVM %s on %s: %w; not touched: %s", it.Name, it.Host, err, untouched(i))
		}
		gone[it.Moid] = true
		p.Removed = append(p.Removed, item(s, g))
	}
	c.Msg = "removed " + list(p.Removed)
	return nil
}

func findSVM(f fleet.Fleet, moid string) (fleet.SVM, bool) {
	for _, s := range f.SVMs {
		if s.Moid == moid {
			return s, true
		}
	}
	return fleet.SVM{}, false
}
