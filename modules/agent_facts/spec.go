package agentfacts

import (
	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/modules/conn"
	"github.com/ksvla/lightagent/modules/fleetopts"
)

// Options are agent_facts' decoded options.
type Options struct {
	conn.VCenterOptions
	conn.KSCOptions
	fleetopts.Options
	Probe         bool   `json:"probe"`
	ProbePassword string `json:"klconfig_password"`
	KnownHosts    string `json:"klconfig_known_hosts"`
	HostKeyCheck  string `json:"klconfig_host_key_checking"`
	PageSize      int    `json:"page_size"`
}

func spec() ansible.Spec {
	own := ansible.Spec{
		Options: []ansible.Option{
			{Name: "probe", Type: ansible.TypeBool, Default: false,
				Description: []string{"Ask unmarked VMs matching O(svm_name_pattern) for their Protection Server version over klconfig (SSH)."}},
			{Name: "klconfig_password", Type: ansible.TypeStr, NoLog: true, EnvFallback: []string{"KSVLA_KLCONFIG_PASSWORD"}, EnvFileFallback: []string{"KSVLA_KLCONFIG_PASSWORD_FILE"},
				Description: []string{"The klconfig configuration password used by O(probe)."}},
			{Name: "klconfig_known_hosts", Type: ansible.TypePath,
				Description: []string{"The known_hosts file the SVMs' host keys are checked against when probing."}},
			{Name: "klconfig_host_key_checking", Type: ansible.TypeStr, Default: "strict", Choices: []any{"strict", "accept_new", "off"},
				Description: []string{"How SVM host keys are checked when probing."}},
			{Name: "page_size", Type: ansible.TypeInt, Default: 500,
				Description: []string{"KSC rows fetched per round trip."}},
			{Name: "timeout", Type: ansible.TypeInt, Default: 600, Range: ansible.SecondsRange,
				Description: []string{"Seconds the whole module may take."}},
		},
		RequiredIf: []ansible.RequiredIf{{Key: "probe", Value: true, Requirements: []string{"svm_name_pattern", "klconfig_password"}}},
	}
	return conn.VCenterSpec().Merge(conn.KSCSpec()).Merge(fleetopts.Spec()).Merge(own)
}
