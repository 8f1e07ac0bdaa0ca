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
				"Light Agents and SVMs of the same major.minor line count as upgraded."}},
		{Name: "ps_products", Type: ansible.TypeList, Elements: ansible.TypeStr, Default: anyList(fleet.DefaultProtectionServer),
			Description: []string{"KSC product keys (or display names) of the Protection Server on SVMs.",
				"The vendor does not document the key; the default is the lab's assumption. Set the key your KSC shows in an SVM's application list."}},
		{Name: "la_products", Type: ansible.TypeList, Elements: ansible.TypeStr, Default: anyList(fleet.DefaultLightAgent),
			Description: []string{"KSC product keys (or display names) of the Light Agent on protected VMs.",
				"The vendor does not document the key; the default is the lab's assumption."}},
		{Name: "svm_name_pattern", Type: ansible.TypeStr,
			Description: []string{"A regular expression for the names of SVMs deployed without this collection (by the vendor's wizard).",
				"A name alone never makes a VM an SVM: such a VM counts as one only when KSC lists the Protection Server on it (or, where the module offers it, a klconfig probe answers); otherwise it is reported as an unrecognised candidate."}},
	}}
}

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
	r := fleet.Rules{
		TargetVersion:    fleet.Version(o.TargetVersion),
		ProtectionServer: o.PSProducts,
		LightAgent:       o.LAProducts,
		MarkRole:         vsphere.MarkRole, MarkVersion: vsphere.MarkVersion, RoleSVM: vsphere.RoleSVM, MarkHost: vsphere.MarkHost,
	}
	if o.SVMNamePattern != "" {
		re, err := regexp.Compile(o.SVMNamePattern)
		if err != nil {
			return fleet.Rules{}, fmt.Errorf("svm_name_pattern is not a valid regular expression: %w", err)
		}
		r.SVMNamePattern = re
	}
	return r, nil
}
