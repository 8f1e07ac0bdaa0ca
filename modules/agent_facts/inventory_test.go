package agentfacts

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// The inventory is a run of agent_facts with its options from the
// environment: the hypervisors carrying SVMs, grouped by datacenter, with
// their readiness; the run's sessions are closed; a bad or missing option
// fails as the module says it, prefixed, without the password.
func TestInventory(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1})
	v := l.Vars(l.Dir())
	ctx := context.Background()
	lab := map[string]string{"VMWARE_HOST": v.VCenterHostname, "VMWARE_PORT": strconv.Itoa(v.VCenterPort),
		"VMWARE_USER": v.VCenterUsername, "VMWARE_PASSWORD": v.VCenterPassword, "VMWARE_CA_FILE": v.VCenterCAFile,
		"KSC_URL": v.KSCURL, "KSC_USERNAME": v.KSCUsername, "KSC_PASSWORD": v.KSCPassword, "KSC_CA_FILE": v.KSCCAFile,
		EnvTargetVersion: v.NewVersion, EnvDatacenter: v.Datacenter}
	env := func(change map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if s, ok := change[k]; ok {
				return s, s != ""
			}
			s, ok := lab[k]
			return s, ok
		}
	}

	l.KSC().ResetCalls()
	inv, err := Inventory(ctx, env(nil))
	require.NoError(t, err)
	assert.ElementsMatch(t, v.ESXiHosts, inv[GroupHypervisors].(map[string]any)["hosts"])
	assert.ElementsMatch(t, v.ESXiHosts, inv[groupDatacenter+v.Datacenter].(map[string]any)["hosts"])
	hv := inv["_meta"].(map[string]any)["hostvars"].(map[string]any)[v.ESXiHosts[0]].(map[string]any)
	assert.Equal(t, v.Datacenter, hv["ksvla_datacenter"])
	assert.Equal(t, false, hv["ksvla_ready"], "the agents still run the old version")
	calls := l.KSC().Calls()
	assert.Equal(t, 1, calls["Session.StartSession"])
	assert.Equal(t, 1, calls["Session.EndSession"], "the run's KSC session is closed")

	for name, tc := range map[string]struct {
		change map[string]string
		want   string
	}{
		"no target version":  {map[string]string{EnvTargetVersion: ""}, "ksvla inventory: set KSVLA_TARGET_VERSION"},
		"bad target version": {map[string]string{EnvTargetVersion: "v6"}, `ksvla inventory: target_version must be a version of two to four dotted numbers such as 6.2.0.200, got "v6"`},
		"no vCenter password": {map[string]string{"VMWARE_PASSWORD": ""},
			"ksvla inventory: password is required: set the password option or export VMWARE_PASSWORD=..."},
		"bad port": {map[string]string{"VMWARE_PORT": "http"}, "ksvla inventory: argument 'port' is of type"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Inventory(ctx, env(tc.change))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), v.KSCPassword)
		})
	}
}
