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
	"github.com/ksvla/lightagent/internal/ksc"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// Module is agent_facts.
type Module struct{}

var _ ansible.Module = (*Module)(nil)

// New returns the module.
func New() ansible.Module { return &Module{} }

// Spec returns the option spec.
func (*Module) Spec() ansible.Spec { return spec() }

// Observe reads vCenter and KSC, builds the fleet and returns it as facts.
func (*Module) Observe(ctx context.Context, req *ansible.Request, resp *ansible.Response) (ansible.Observed, error) {
	var o Options
	if err := req.Params.Decode(&o); err != nil {
		return nil, err
	}
	rules, err := o.Rules()
	if err != nil {
		return nil, err
	}
	var (
		snap  fleet.Snapshot
		trips int
		hit   cacheResult
	)
	if o.Cache != nil {
		// The whole scope, once per interval for every caller; each one
		// keeps its own hosts below.
		whole := o
		whole.ESXiHostnames = nil
		snap, hit, err = readThrough(ctx, *o.Cache, cacheKey(o), func() (fleet.Snapshot, error) {
			s, n, err := read(ctx, whole, rules)
			trips = n
			return s, err
		})
		resp.Set("cache", hit)
	} else {
		snap, trips, err = read(ctx, o, rules)
	}
	if err != nil {
		return nil, err
	}
	f := snap.Build(o.ESXiHostnames, rules)
	for _, e := range f.ProbeErrors {
		resp.Warn("klconfig probe failed, VM not counted as an SVM: " + e)
	}
	for _, a := range f.Ambiguous {
		resp.Warn("ambiguous KSC match, not guessed: " + a)
	}
	for _, w := range compatWarnings(f) {
		resp.Warn(w)
	}
	for _, h := range f.Hypervisors {
		for _, p := range h.Problems {
			resp.Warn(h.Name + ": " + p)
		}
	}
	resp.Facts = map[string]any{"ksvla": factsView{Fleet: f}}
	// One record per protected VM is most of the output on a large fleet
	// (16k VMs: about 4 MB). As a fact Ansible would copy it into every
	// later task's variables and AWX into its fact cache; plays use the
	// hypervisors' counts and pending lists, so the list is a plain result
	// for whoever registers it, as vmware_vm_info returns its VMs.
	resp.Set("agents", f.Agents)
	resp.Set("round_trips", map[string]any{"vcenter": trips})
	resp.Msg = summary(f)
	return f, nil
}

// connect logs in to vCenter and KSC; done logs out of both.
func connect(ctx context.Context, o Options) (*vsphere.Session, fleet.Sources, func(), error) {
	vc, err := o.VCenterOptions.Conn()
	if err != nil {
		return nil, fleet.Sources{}, nil, err
	}
	kc, err := o.KSCOptions.Config()
	if err != nil {
		return nil, fleet.Sources{}, nil, err
	}
	kc.PageSize = o.PageSize

	sess, err := vsphere.Connect(ctx, vc)
	if err != nil {
		return nil, fleet.Sources{}, nil, err
	}
	client, err := ksc.New(kc)
	if err != nil {
		sess.Logout(context.WithoutCancel(ctx)) //nolint:errcheck // a failed logout only leaves a session to expire
		return nil, fleet.Sources{}, nil, err
	}
	// The facts are read by then; a failed logout only leaves a session to expire.
	done := func() {
		client.Close(context.WithoutCancel(ctx)) //nolint:errcheck
		sess.Logout(context.WithoutCancel(ctx))  //nolint:errcheck
	}
	src := fleet.Sources{Inventory: sess, KSC: client, Placements: sess, DRS: sess}
	if o.Probe {
		src.Prober = &prober{opts: o}
	}
	return sess, src, done, nil
}

// read logs in to vCenter and KSC and reads what the fleet is built from,
// returning the vCenter round trips it took.
func read(ctx context.Context, o Options, rules fleet.Rules) (fleet.Snapshot, int, error) {
	sess, src, done, err := connect(ctx, o)
	if err != nil {
		return fleet.Snapshot{}, 0, err
	}
	defer done()
	snap, err := fleet.Read(ctx, src, o.Scope(), rules)
	return snap, int(sess.RoundTrips()), err
}

// observe connects to vCenter and KSC and reads the fleet, keeping the
// sessions open for the caller (the inventory reads the hosts too); done
// logs out.
func observe(ctx context.Context, o Options) (fleet.Fleet, *vsphere.Session, func(), error) {
	rules, err := o.Rules()
	if err != nil {
		return fleet.Fleet{}, nil, nil, err
	}
	sess, src, done, err := connect(ctx, o)
	if err != nil {
		return fleet.Fleet{}, nil, nil, err
	}
	f, err := fleet.Observe(ctx, src, o.Scope(), rules)
	if err != nil {
		done()
		return fleet.Fleet{}, nil, nil, err
	}
	return f, sess, done, nil
}

// factsView is the fleet without its per-agent list (returned beside
// the facts): for encoding/json the outer field, always nil and so
// omitted, hides the embedded one of the same name.
type factsView struct {
	fleet.Fleet
	Agents []fleet.Agent `json:"agents,omitempty"`
}

// Plan is always empty: agent_facts changes nothing.
func (*Module) Plan(*ansible.Request, ansible.Observed, *ansible.Response) (ansible.Plan, error) {
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
