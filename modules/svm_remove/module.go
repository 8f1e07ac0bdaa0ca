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

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/ksc"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/ksvla/lightagent/modules/conn"
)

// Module is svm_remove.
type Module struct{ conn.Sessions }

var (
	_ ansible.Module  = (*Module)(nil)
	_ ansible.Applier = (*Module)(nil)
	_ ansible.Closer  = (*Module)(nil)
)

// New returns the module.
func New() ansible.Module { return &Module{} }

// Spec returns the option spec.
func (*Module) Spec() ansible.Spec { return spec() }

func decode(req *ansible.Request) (Options, fleet.Rules, error) {
	var o Options
	if err := req.Params.Decode(&o); err != nil {
		return o, fleet.Rules{}, err
	}
	r, err := o.Rules()
	if err == nil && o.Version != "" {
		err = fleet.CheckVersion("version", o.Version)
	}
	return o, r, err
}

// clients are the connections of the run, shared by Observe and Apply.
type clients struct {
	vc  *vsphere.Session
	ksc *ksc.Client // nil when forced without KSC options
}

// connect logs in to vCenter and, when its options are given, to KSC.
// Without KSC the Light Agents are unknown, so the agent gate cannot be
// checked: that is only allowed with force.
func (m *Module) connect(ctx context.Context, o Options) (*clients, error) {
	if !o.KSCOptions.Given() && !o.Force {
		return nil, errors.New("the Light Agent gate needs KSC: set ksc_url, ksc_username and ksc_password (or export KSC_URL, KSC_USERNAME, KSC_PASSWORD), or set force=true to remove without checking Light Agents")
	}
	if _, err := o.VCenterOptions.Conn(); err != nil {
		return nil, err // before KSC, so a missing vCenter option is reported first
	}
	c := &clients{}
	if o.KSCOptions.Given() {
		var err error
		if c.ksc, err = m.KSC(o.KSCOptions); err != nil {
			return nil, err
		}
	}
	var err error
	if c.vc, err = m.VCenter(ctx, o.VCenterOptions); err != nil {
		return nil, err
	}
	return c, nil
}

// observe reads the fleet, keeping the inventory it was built from.
func (c *clients) observe(ctx context.Context, o Options, r fleet.Rules) (fleet.Fleet, []vsphere.VM, error) {
	rec := &recorder{inv: c.vc}
	// DRS reads the VMs it may move here itself, not through the recorder.
	src := fleet.Sources{Inventory: rec, DRS: c.vc}
	if c.ksc != nil {
		// Only a non-nil client: a nil *ksc.Client in the interface would
		// look like a KSC to fleet.Observe.
		src.KSC = c.ksc
	}
	f, err := fleet.Observe(ctx, src, o.Scope(), r)
	return f, rec.vms, err
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
func (m *Module) Observe(ctx context.Context, req *ansible.Request, resp *ansible.Response) (ansible.Observed, error) {
	o, rules, err := decode(req)
	if err != nil {
		return nil, err
	}
	c, err := m.connect(ctx, o)
	if err != nil {
		return nil, err
	}
	f, vms, err := c.observe(ctx, o, rules)
	if err != nil {
		return nil, err
	}
	obs := observed{Fleet: f, InScope: byName(vms), Outside: map[string][]string{}}
	if missing := missingNames(o, obs); len(missing) > 0 && (o.Cluster != "" || len(o.ESXiHostnames) > 0) {
		// A name outside a narrowed scope is not "absent": say where it is
		// instead of reporting success for a VM that still runs.
		all, err := c.vc.Inventory(ctx, vsphere.Scope{Datacenter: o.Datacenter})
		if err != nil {
			return nil, err
		}
		for _, v := range all {
			if slices.Contains(missing, v.Name) {
				obs.Outside[v.Name] = append(obs.Outside[v.Name], v.Host)
			}
		}
	}
	for _, a := range f.Ambiguous {
		resp.Warn("ambiguous KSC match, not guessed: " + a)
	}
	if o.Version != "" && len(f.Candidates) > 0 {
		resp.Warn("unrecognised SVM candidates are never removed (their version is unknown): " + strings.Join(f.Candidates, ", "))
	}
	if o.Force {
		resp.Warn("force=true: the Light Agent, preparation and unknown-VM gates are skipped; the replacement and last-SVM gates still apply")
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
	names := o.Names
	if o.Name != "" {
		names = []string{o.Name}
	}
	var out []string
	for _, n := range names {
		if len(obs.InScope[n]) == 0 {
			out = append(out, n)
		}
	}
	return out
}

// Plan selects the SVMs and checks every gate before anything is touched.
func (*Module) Plan(req *ansible.Request, st ansible.Observed, resp *ansible.Response) (ansible.Plan, error) {
	o, _, err := decode(req)
	if err != nil {
		return nil, err
	}
	p, err := plan(o, st.(observed))
	resp.Set("absent", p.Absent)
	resp.Set("blocked", p.Blocked)
	resp.Set("removed", []Item{})
	if err != nil {
		return nil, err
	}
	for _, it := range p.Remove {
		for _, g := range it.Gates {
			if g.Skipped {
				resp.Warn(fmt.Sprintf("force=true: %s on %s passes although %s", it.Name, it.Host, g.Reason))
			}
		}
	}
	switch {
	case p.Empty() && o.Version != "":
		resp.Msg = fmt.Sprintf("no SVM of version %s in scope; nothing to remove", o.Version)
	case p.Empty():
		resp.Msg = "nothing to remove; absent: " + strings.Join(p.Absent, ", ")
	case req.CheckMode:
		would := make([]Item, len(p.Remove))
		for i, it := range p.Remove {
			it.WouldRemove = true
			would[i] = it
		}
		resp.Set("removed", would)
		resp.Msg = "would remove " + list(p.Remove)
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

// Apply removes the planned SVMs one by one. Before each, it observes the
// fleet again and re-runs the gates, because the world moves between plan
// and removal (an agent update, a new SVM powered off); the first SVM that
// no longer passes stops the run, the ones after it untouched.
func (m *Module) Apply(ctx context.Context, req *ansible.Request, pl ansible.Plan, resp *ansible.Response) error {
	o, rules, err := decode(req)
	if err != nil {
		return err
	}
	p := pl.(Plan)
	c, err := m.connect(ctx, o)
	if err != nil {
		return err
	}

	removed, absent := []Item{}, append([]string{}, p.Absent...)
	gone := map[string]bool{}
	defer func() {
		resp.Set("removed", removed)
		resp.Set("absent", absent)
	}()
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
		f, vms, err := c.observe(ctx, o, rules)
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
			absent = append(absent, it.Name) // removed by someone else meanwhile
			continue
		}
		g := gatesFor(f, s, o.Force)
		if !g.Passed() {
			resp.Set("blocked", []Blocked{{Name: s.Name, Host: s.Host, Version: s.Version, Reason: g.Reason(), Gates: g}})
			return fleet.BlockedAtRemovalError(s, g, untouched(i))
		}
		if err := remove(ctx, c.vc, it.Moid, time.Duration(o.ShutdownTimeout)*time.Second); err != nil {
			if errors.Is(err, vsphere.ErrNotFound) {
				absent = append(absent, it.Name)
				continue
			}
			return fmt.Errorf("remove SVM %s on %s: %w; not touched: %s", it.Name, it.Host, err, untouched(i))
		}
		gone[it.Moid] = true
		removed = append(removed, item(s, g))
	}
	resp.Msg = "removed " + list(removed)
	return nil
}

// remove shuts the guest down (hard power-off after timeout) and deletes
// the VM with its files.
func remove(ctx context.Context, s *vsphere.Session, moid string, timeout time.Duration) error {
	vm := object.NewVirtualMachine(s.Client(), types.ManagedObjectReference{Type: "VirtualMachine", Value: moid})
	if err := s.Shutdown(ctx, vm, timeout); err != nil {
		return err
	}
	return s.Destroy(ctx, vm)
}

func findSVM(f fleet.Fleet, moid string) (fleet.SVM, bool) {
	for _, s := range f.SVMs {
		if s.Moid == moid {
			return s, true
		}
	}
	return fleet.SVM{}, false
}
