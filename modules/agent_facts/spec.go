package agentfacts

import (
	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/modules/conn"
)

// Options are agent_facts' decoded options.
type Options struct {
	conn.VCenterOptions
	conn.KSCOptions
	Datacenter     string   `json:"datacenter"`
	Cluster        string   `json:"cluster"`
	ESXiHostnames  []string `json:"esxi_hostnames"`
	TargetVersion  string   `json:"target_version"`
	PSProducts     []string `json:"ps_products"`
	LAProducts     []string `json:"la_products"`
	SVMNamePattern string   `json:"svm_name_pattern"`
	Probe          bool     `json:"probe"`
	ProbePassword  string   `json:"klconfig_password"`
	KnownHosts     string   `json:"klconfig_known_hosts"`
	HostKeyCheck   string   `json:"klconfig_host_key_checking"`
	PageSize       int      `json:"page_size"`
}

func anyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func spec() ansible.Spec {
	own := ansible.Spec{
		Options: []ansible.Option{
			{Name: "datacenter", Type: ansible.TypeStr, Description: []string{"Limit the facts to this datacenter."}},
			{Name: "cluster", Type: ansible.TypeStr, Description: []string{"Limit the facts to this cluster (name or inventory path inside O(datacenter))."}},
			{Name: "esxi_hostnames", Type: ansible.TypeList, Elements: ansible.TypeStr,
				Description: []string{"Limit the facts to these ESXi hosts."}},
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
					"Such a VM counts as an SVM only when KSC lists the Protection Server on it, or when O(probe=true) and it answers klconfig C(version)."}},
			{Name: "probe", Type: ansible.TypeBool, Default: false,
				Description: []string{"Ask unmarked VMs matching O(svm_name_pattern) for their Protection Server version over klconfig (SSH)."}},
			{Name: "klconfig_password", Type: ansible.TypeStr, NoLog: true, EnvFallback: []string{"KSVLA_KLCONFIG_PASSWORD"},
				Description: []string{"The klconfig configuration password used by O(probe)."}},
			{Name: "klconfig_known_hosts", Type: ansible.TypePath,
				Description: []string{"The known_hosts file the SVMs' host keys are checked against when probing."}},
			{Name: "klconfig_host_key_checking", Type: ansible.TypeStr, Default: "strict", Choices: []any{"strict", "accept_new", "off"},
				Description: []string{"How SVM host keys are checked when probing."}},
			{Name: "page_size", Type: ansible.TypeInt, Default: 500,
				Description: []string{"KSC rows fetched per round trip."}},
			{Name: "timeout", Type: ansible.TypeInt, Default: 600,
				Description: []string{"Seconds the whole module may take."}},
		},
		RequiredIf: []ansible.RequiredIf{{Key: "probe", Value: true, Requirements: []string{"svm_name_pattern", "klconfig_password"}}},
	}
	return conn.VCenterSpec().Merge(conn.KSCSpec()).Merge(own)
}
