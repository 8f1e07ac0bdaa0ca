// Package fleetopts holds the options of the modules that observe the
// fleet (agent_facts, svm_remove): which part of vCenter they look at, the
// target version, and how SVMs and Light Agents are recognised. Written
// once, like the connection options of modules/conn, so both modules read
// the fleet the same way.
package fleetopts

import (
	"fmt"
	"regexp"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// Options are the decoded fleet options; modules embed it in their Options
// struct.
type Options struct {
	Datacenter     string   `json:"datacenter"`
	Cluster        string   `json:"cluster"`
	ESXiHostnames  []string `json:"esxi_hostnames"`
	TargetVersion  string   `json:"target_version"`
	PSProducts     []string `json:"ps_products"`
	LAProducts     []string `json:"la_products"`
	SVMNamePattern string   `json:"svm_name_pattern"`
	NotProtected   []string `json:"not_protected_vms"`
	// Compatibility is the raw table; Rules parses it.
	Compatibility map[string]any `json:"compatibility"`
	// AgentSelection is the Light Agent policy's SVM selection.
	AgentSelection string `json:"agent_selection"`
}

// Spec is the spec of Options. target_version is required.
func Spec() ansible.Spec {
	return ansible.Spec{Options: []ansible.Option{
		{Name: "datacenter", Type: ansible.TypeStr, Description: []string{"Only look at VMs in this datacenter."}},
		{Name: "cluster", Type: ansible.TypeStr, Description: []string{"Only look at VMs in this cluster (name or inventory path inside O(datacenter))."}},
		{Name: "esxi_hostnames", Type: ansible.TypeList, Elements: ansible.TypeStr,
			Description: []string{"Only look at VMs on these ESXi hosts."}},
		{Name: "target_version", Type: ansible.TypeStr, Required: true,
			Description: []string{"The Protection Server version being rolled out, e.g. V(6.2.0.200).",
				"SVMs of its major.minor line count as new; a Light Agent counts as updated when O(compatibility) pairs its product and version with this version."}},
		{Name: "compatibility", Type: ansible.TypeDict, Default: fleet.DefaultCompat,
			Description: []string{"Which Light Agents each Protection Server version serves: a dict of Protection Server version -> dict of agent product (KSC product key or display name, as in O(la_products)) -> list of agent versions, e.g. C({\"6.1\": {\"kesl\": [\"12.1\"], \"KES\": [\"12.5\"]}}).",
				"A version stands for every version starting with its parts: V(6.1) covers 6.1.0.100, V(12.1) covers 12.1.0.1297. Quote versions in YAML (V(12.10) unquoted is the number 12.1).",
				"In KSVLA 6.x the Light Agents are Kaspersky Endpoint Security for Windows and for Linux 12.x in Light Agent mode, so their versions never share the Protection Server's line; which agent connects to which SVM is the vendor's table, not arithmetic.",
				"The default holds only the pairs the vendor publishes (KESL 12.0 -> Protection Server 6.0, KESL 12.1 -> 6.1). Fill in the rows for your versions from the vendor's help (\"Supported versions of applications in Light Agent mode\"); a given table replaces the default.",
				"An SVM whose version has no row blocks its own removal while Light Agents run on its hypervisor; an agent in no row counts as not updated and as needing the SVMs it runs with."}},
		{Name: "ps_products", Type: ansible.TypeList, Elements: ansible.TypeStr, Default: anyList(fleet.DefaultProtectionServer),
			Description: []string{"KSC product keys (or display names) of the Protection Server on SVMs.",
				"The vendor does not document the key; the default is the lab's assumption. Set the key your KSC shows in an SVM's application list."}},
		{Name: "la_products", Type: ansible.TypeList, Elements: ansible.TypeStr, Default: anyList(fleet.DefaultLightAgent),
			Description: []string{"KSC product keys (or display names) of the Light Agents on protected VMs: Kaspersky Endpoint Security for Windows and for Linux in Light Agent mode.",
				"The default names the keys KSC uses for those products (V(KES), V(kesl)); check the application list of a protected VM in your KSC and set what it shows."}},
		NotProtectedOption,
		{Name: "agent_selection", Type: ansible.TypeStr, Default: fleet.SelectHypervisor, Choices: anyList(fleet.AgentSelections),
			Description: []string{"How the Light Agents choose their SVM, as the SVM selection of the Light Agent policy in KSC says (KESL 12.1 help, U(https://support.kaspersky.com/KESL/12.1/en-US/272009.htm)). The collection does not read the policy: state what it is set to.",
				"It decides which Light Agents that fully automated DRS may move onto a host keep that host's old SVM (C(agents_may_arrive), gate C(no_agent_needs_it)).",
				"V(hypervisor) (the extended algorithm, scope hypervisor) assumes the least: a moved agent connects only to an SVM on its new host, so every agent not updated yet that DRS may move onto a host keeps the host's old SVM. On a DRS cluster every old SVM then waits for every agent of the cluster, and a host left out of the run (preflight_capacity=skip, --limit, a failed host) keeps the others waiting until they give up.",
				"V(standard) (the vendor's default: an SVM on the same hypervisor, else the one with the fewest agents anywhere) and V(cluster) (the extended algorithm, scope cluster) let a moved agent use an SVM on another host of the cluster: one old SVM of the cluster that serves those agents stays for them, the anchor, and the others may go. The anchor is the old SVM of a host whose own removal cannot pass yet (no prepared SVM of the target version there, such as a host left out of the run), else the one whose name sorts last; every host reading the cluster picks the same one, so hosts removing at the same time never remove it, and the refusal names it.",
				"Set V(standard) or V(cluster) only when the policy says so: with the hypervisor scope an agent DRS moves onto a host whose old SVM is gone finds no SVM and is unprotected."}},
		{Name: "svm_name_pattern", Type: ansible.TypeStr,
			Description: []string{"A regular expression for the names of SVMs deployed without this collection (by the vendor's wizard).",
				"A name alone never makes a VM an SVM: such a VM counts as one only when KSC lists the Protection Server on it (or, where the module offers it, a klconfig probe answers); otherwise it is reported as an unrecognised candidate."}},
	}}
}

// NotProtectedOption is not_protected_vms, shared with svm_deploy.
var NotProtectedOption = ansible.Option{Name: "not_protected_vms", Type: ansible.TypeList, Elements: ansible.TypeStr,
	Description: []string{"Names of VMs on the hypervisors that carry no Light Agent (appliances, templates, infrastructure VMs), or shell-style patterns such as V(vCLS-*), matched case-insensitively.",
		"Every other VM vCenter shows on a host that is neither an SVM nor a Light Agent KSC lists with its version (KSC's retention removed it, it came by vMotion from another site) blocks the removal of an SVM on that host (gate C(no_unknown_vm)), named in the refusal."}}

func anyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// Scope is the part of vCenter the options select.
func (o Options) Scope() vsphere.Scope {
	return vsphere.Scope{Datacenter: o.Datacenter, Cluster: o.Cluster, Hosts: o.ESXiHostnames}
}

// Rules are the recognition rules the options give, with the marks
// svm_deploy writes.
func (o Options) Rules() (fleet.Rules, error) {
	if err := fleet.CheckVersion("target_version", o.TargetVersion); err != nil {
		return fleet.Rules{}, err
	}
	r := fleet.Rules{
		TargetVersion:    fleet.Version(o.TargetVersion),
		ProtectionServer: o.PSProducts,
		LightAgent:       o.LAProducts,
		NotProtected:     o.NotProtected,
		MarkRole:         vsphere.MarkRole, MarkVersion: vsphere.MarkVersion, RoleSVM: vsphere.RoleSVM, MarkHost: vsphere.MarkHost,
		AgentSelection: o.AgentSelection,
	}
	raw := o.Compatibility
	if raw == nil {
		raw = fleet.DefaultCompat
	}
	c, err := fleet.ParseCompat(raw)
	if err != nil {
		return fleet.Rules{}, err
	}
	r.Compat = c
	if o.SVMNamePattern != "" {
		re, err := regexp.Compile(o.SVMNamePattern)
		if err != nil {
			return fleet.Rules{}, fmt.Errorf("svm_name_pattern is not a valid regular expression: %w", err)
		}
		r.SVMNamePattern = re
	}
	return r, nil
}
