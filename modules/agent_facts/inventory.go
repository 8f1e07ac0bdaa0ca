package agentfacts

import (
	"context"
	"errors"
	"regexp"
	"sort"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// Inventory group and variable names the playbooks rely on.
const (
	GroupHypervisors = "ksvla_hypervisors"
	groupDatacenter  = "ksvla_dc_"
	groupCluster     = "ksvla_cluster_"
)

// Environment variables the inventory reads beyond the modules' own
// fallbacks (VMWARE_*, KSC_*): what a task would give as options.
const (
	EnvTargetVersion = "KSVLA_TARGET_VERSION"
	EnvDatacenter    = "KSVLA_DATACENTER"
	EnvCluster       = "KSVLA_CLUSTER"
)

// inventoryRead is what a run of the module for the inventory takes: the
// fleet, and where each ESXi host is (read with the run's session).
type inventoryRead struct {
	fleet  fleet.Fleet
	places []vsphere.HostPlace
}

func (r *inventoryRead) take(ctx context.Context, m *module, o Options, f fleet.Fleet) error {
	vc, err := m.VCenter(ctx, o.VCenterOptions)
	if err != nil {
		return err
	}
	if r.places, err = vc.Hosts(ctx, o.Datacenter); err != nil {
		return err
	}
	r.fleet = f
	return nil
}

var unsafeGroupChars = regexp.MustCompile(`[^A-Za-z0-9_]`)

// Inventory answers Ansible's inventory-script `--list`: the hypervisors
// that carry an SVM, in group ksvla_hypervisors and in one group per
// datacenter and per cluster, with their SVMs and readiness for the
// target version as host variables. It reads vCenter and KSC as
// agent_facts does, with agent_facts' options taken from the environment
// only (VMWARE_*, KSC_*, KSVLA_TARGET_VERSION, KSVLA_DATACENTER,
// KSVLA_CLUSTER), as AWX hands credentials to an inventory source.
func Inventory(ctx context.Context, getenv func(string) (string, bool)) (map[string]any, error) {
	raw := map[string]any{}
	for opt, env := range map[string]string{"target_version": EnvTargetVersion, "datacenter": EnvDatacenter, "cluster": EnvCluster} {
		if v, ok := getenv(env); ok && v != "" {
			raw[opt] = v
		}
	}
	if raw["target_version"] == nil {
		return nil, errors.New("ksvla inventory: set " + EnvTargetVersion + " to the Protection Server version to upgrade to (readiness is measured against it)")
	}
	// The module's own run, so the options are validated and decoded in
	// one place and the sessions closed however it ends.
	inv := &inventoryRead{}
	res := ansible.Execute(ctx, "agent_facts", typed(&module{inv: inv}),
		ansible.Invocation{Args: raw, ModuleName: "ksvla.lightagent inventory"}, getenv)
	if res.Failed() {
		return nil, errors.New("ksvla inventory: " + res.Msg())
	}
	f, places := inv.fleet, inv.places
	where := map[string]int{}
	for i, p := range places {
		where[p.Name] = i
	}

	groups := map[string][]string{}
	hostvars := map[string]any{}
	for _, h := range f.Hypervisors {
		if len(h.SVMs) == 0 {
			continue // no SVM, no Light Agent protection: nothing of KSVLA to upgrade there
		}
		vars := map[string]any{
			"ksvla_svms":           h.SVMs,
			"ksvla_ready":          h.Ready,
			"ksvla_target_version": f.TargetVersion,
			"ksvla_agents":         h.Agents,
			"ksvla_agents_pending": len(h.AgentsPending),
			"ksvla_unprotected":    len(h.Unprotected),
		}
		groups[GroupHypervisors] = append(groups[GroupHypervisors], h.Name)
		if i, ok := where[h.Name]; ok {
			p := places[i]
			vars["ksvla_datacenter"], vars["ksvla_cluster"] = p.Datacenter, p.Cluster
			dc := groupDatacenter + unsafeGroupChars.ReplaceAllString(p.Datacenter, "_")
			groups[dc] = append(groups[dc], h.Name)
			if p.Cluster != "" {
				cl := groupCluster + unsafeGroupChars.ReplaceAllString(p.Cluster, "_")
				groups[cl] = append(groups[cl], h.Name)
			}
		}
		hostvars[h.Name] = vars
	}
	out := map[string]any{"_meta": map[string]any{"hostvars": hostvars}}
	var children []string
	for g, hosts := range groups {
		sort.Strings(hosts)
		out[g] = map[string]any{"hosts": hosts}
		if g != GroupHypervisors {
			children = append(children, g)
		}
	}
	sort.Strings(children)
	// The datacenter and cluster groups are children of ksvla_hypervisors, so a limit or a play
	// on ksvla_dc_X / ksvla_cluster_Y stays inside the hypervisors to upgrade.
	if g, ok := out[GroupHypervisors].(map[string]any); ok {
		g["children"] = children
	} else {
		out[GroupHypervisors] = map[string]any{"hosts": []string{}, "children": children}
	}
	return out, nil
}
