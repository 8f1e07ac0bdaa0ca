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
	ansible.Deadline
	Probe         bool   `json:"probe"`
	ProbePassword string `json:"klconfig_password" ansible:"no_log"`
	KnownHosts    string `json:"klconfig_known_hosts"`
	HostKeyCheck  string `json:"klconfig_host_key_checking"`
	PageSize      int    `json:"page_size"`
	// Cache, when set, shares one read among the callers of an interval.
	Cache *CacheOptions `json:"cache"`
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
			{Name: "cache", Type: ansible.TypeDict,
				Options: &ansible.Spec{Options: []ansible.Option{
					{Name: "path", Type: ansible.TypePath, Required: true,
						Description: []string{"The cache file (its directory is created, readable by its owner only); a lock file beside it (C(.lock) added) queues the callers."}},
					{Name: "max_age", Type: ansible.TypeInt, Default: 10, Range: ansible.Between(0, 86400),
						Description: []string{"Seconds a read serves later callers; set it to the polling delay, so one read serves one interval."}},
				}},
				Description: []string{
					"Share one read of vCenter and KSC among every caller of a polling interval (the hosts of a wave waiting for their Light Agents), so their load does not grow with the number of hypervisors.",
					"The first caller after O(cache.max_age) seconds logs in, reads the whole scope (O(datacenter), O(cluster); not O(esxi_hostnames)), writes it to O(cache.path) atomically and under an exclusive lock; callers meanwhile wait for that lock, then build their facts for their own O(esxi_hostnames) from the file without logging in. A file read with other connection or product options is not used.",
					"Facts may be up to O(cache.max_age) seconds old: use it for waiting, not for gates. M(ksvla.lightagent.svm_remove) reads live and refuses on its own.",
					"The file holds the fleet as read (names, addresses, versions), no credentials; it is created readable by its owner only, also in check mode (it changes nothing on vCenter or KSC)."}},
			ansible.TimeoutOption(600),
		},
		RequiredIf: []ansible.RequiredIf{{Key: "probe", Value: true, Requirements: []string{"svm_name_pattern", "klconfig_password"}}},
	}
	return conn.VCenterSpec().Merge(conn.KSCSpec()).Merge(fleetopts.Spec()).Merge(own)
}
