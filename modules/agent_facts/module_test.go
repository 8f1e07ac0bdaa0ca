package agentfacts

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func labArgs(l *sim.Lab) map[string]any { return labtest.FleetModuleArgs(l.Vars(l.Dir())) }

type hvView struct {
	Name          string              `json:"name"`
	SVMs          map[string][]string `json:"svms"`
	Agents        map[string]int      `json:"agents"`
	AgentsPending []string            `json:"agents_pending"`
	Unprotected   []string            `json:"unprotected"`
	Ready         bool                `json:"ready"`
	RemovableSVMs []string            `json:"removable_svms"`
}

func hypervisors(t *testing.T, res map[string]any) map[string]hvView {
	t.Helper()
	raw, err := json.Marshal(ansibletest.Get(res, "ansible_facts", "ksvla", "hypervisors"))
	require.NoError(t, err)
	var list []hvView
	require.NoError(t, json.Unmarshal(raw, &list))
	out := map[string]hvView{}
	for _, h := range list {
		out[h.Name] = h
	}
	return out
}

// A half-upgraded 3-host lab: host 1 has its new SVM and updated agents,
// host 2 only its new SVM (agents stay old because the update task ran
// before it), host 3 nothing new.
func TestHalfUpgradedFleet(t *testing.T) {
	// Held on their hosts: otherwise host 3's agents may arrive on host 1.
	l := labtest.Start(t, sim.Config{Hosts: 3, VMsPerHost: 2, ProtectedVMsStay: true})
	s := labtest.VSphere(t, l)
	hosts := l.Vars(l.Dir()).ESXiHosts
	v := l.Vars(l.Dir())
	newSVM1 := labtest.DeployNewSVM(t, l, s, hosts[0])
	labtest.UpdateAgents(t, l)
	labtest.DeployNewSVM(t, l, s, hosts[1])

	ctx := context.Background()
	for _, mode := range []ansibletest.Mode{{}, {Check: true, Diff: true}} {
		res := ansibletest.Run(t, ctx, "agent_facts", New(), labArgs(l), mode)
		require.False(t, res.Failed(), res.Msg())
		assert.False(t, res.Changed(), "facts never change anything")
		hv := hypervisors(t, res)
		require.Len(t, hv, 3)

		h1, h2, h3 := hv[hosts[0]], hv[hosts[1]], hv[hosts[2]]
		assert.True(t, h1.Ready)
		assert.Equal(t, map[string]int{"12.6.0.200": 1, "12.2.0.400": 1}, h1.Agents, "Windows and Linux agents, each on its own 12.x")
		assert.Len(t, h1.RemovableSVMs, 1, "the old SVM of host 1 may go")
		assert.Contains(t, h1.SVMs["6.2.0.200"], newSVM1)

		assert.False(t, h2.Ready)
		assert.Len(t, h2.AgentsPending, 2)
		assert.Empty(t, h2.RemovableSVMs, "old agents still need the old SVM")

		assert.False(t, h3.Ready)
		assert.Empty(t, h3.SVMs["6.2.0.200"])
		for _, h := range hv {
			assert.Empty(t, h.Unprotected, h.Name)
		}
		assert.Equal(t, false, ansibletest.Get(res, "ansible_facts", "ksvla", "ready_to_remove", "6.1.0.100"))
		assert.EqualValues(t, 1, ansibletest.Get(res, "ansible_facts", "ksvla", "summary", "hosts_ready"))
		assert.EqualValues(t, 4, ansibletest.Get(res, "ansible_facts", "ksvla", "summary", "agents_pending"))
		// Every protected VM's record is in the result, not in the facts.
		assert.Nil(t, ansibletest.Get(res, "ansible_facts", "ksvla", "agents"))
		agents, ok := res["agents"].([]any)
		require.True(t, ok, "agents is a list: %v", res["agents"])
		assert.Len(t, agents, 6)
		products := map[any]int{}
		for _, a := range agents {
			assert.NotEmpty(t, ansibletest.Get(a, "version"))
			assert.NotEmpty(t, ansibletest.Get(a, "host"))
			assert.NotEmpty(t, ansibletest.Get(a, "os"))
			assert.NotEmpty(t, ansibletest.Get(a, "svm_versions"), "the table pairs every lab agent")
			products[ansibletest.Get(a, "product")]++
		}
		assert.Equal(t, map[any]int{"KES": 3, "kesl": 3}, products)
		// KSC shows the first new SVM prepared, the second not yet; the
		// old ones were activated long ago.
		for _, sv := range ansibletest.Get(res, "ansible_facts", "ksvla", "svms").([]any) {
			name, prep := ansibletest.Get(sv, "name"), ansibletest.Get(sv, "prepared")
			switch {
			case name == newSVM1 || ansibletest.Get(sv, "version") == v.OldVersion:
				assert.Equal(t, true, prep, name)
				assert.NotEmpty(t, ansibletest.Get(sv, "databases_date"), name)
			default:
				assert.Equal(t, false, prep, name)
				assert.Equal(t, false, ansibletest.Get(sv, "activated"), name)
			}
		}
	}
	assert.Empty(t, l.Gaps())
}

// Wizard-deployed SVMs carry no marks: without KSC's product they are
// candidates, with the probe they are SVMs.
func TestUnmarkedSVMsNeedProofFromKlconfig(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1, Unmarked: true})
	v := l.Vars(l.Dir())
	ctx := context.Background()

	args := labArgs(l)
	args["ps_products"] = []any{"no-such-product"} // KSC must not vouch for them either
	args["svm_name_pattern"] = "^svm-"
	res := ansibletest.Run(t, ctx, "agent_facts", New(), args, ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.Empty(t, ansibletest.Get(res, "ansible_facts", "ksvla", "svms"))
	assert.Len(t, ansibletest.Get(res, "ansible_facts", "ksvla", "unrecognised_candidates"), 2)

	args["probe"] = true
	args["klconfig_password"] = v.SVMKlconfigPassword
	args["klconfig_known_hosts"] = v.SVMKnownHosts
	res = ansibletest.Run(t, ctx, "agent_facts", New(), args, ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	svms := ansibletest.Get(res, "ansible_facts", "ksvla", "svms").([]any)
	require.Len(t, svms, 2)
	for _, s := range svms {
		assert.Equal(t, "klconfig_probe", ansibletest.Get(s, "recognised_by"))
		assert.Equal(t, v.OldVersion, ansibletest.Get(s, "version"))
	}
	raw, _ := json.Marshal(res)
	assert.NotContains(t, string(raw), v.SVMKlconfigPassword)
	assert.NotContains(t, string(raw), v.VCenterPassword)
	assert.NotContains(t, string(raw), v.KSCPassword)

	// With the product key KSC really uses, the KSC product list vouches.
	args = labArgs(l)
	args["ps_products"] = []any{v.PSProductKey}
	args["ps_products"] = []any{v.PSProductKey}
	res = ansibletest.Run(t, ctx, "agent_facts", New(), args, ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	for _, s := range ansibletest.Get(res, "ansible_facts", "ksvla", "svms").([]any) {
		assert.Equal(t, "ksc_product", ansibletest.Get(s, "recognised_by"))
	}
}

// With the vendor's default table (KESL 12.0/12.1 only) the lab's Windows
// agent and its 6.2 target are in no row: the facts say so instead of
// calling agents unprotected without a word.
func TestDefaultTableWarns(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: 2})
	args := labArgs(l)
	delete(args, "compatibility")
	res := ansibletest.Run(t, context.Background(), "agent_facts", New(), args, ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	warnings := ansibletest.Get(res, "warnings")
	assert.Contains(t, warnings, "compatibility has no row for Protection Server 6.2.0.200: no Light Agent counts as updated; add the agent versions it serves")
	assert.Contains(t, warnings, "1 Light Agent(s) are in no row of compatibility, so no SVM serves them: vm-esxi-01-001 (KES 12.5.0.100)")
	assert.EqualValues(t, 1, ansibletest.Get(res, "ansible_facts", "ksvla", "summary", "unprotected"), "the vendor pairs KESL 12.1 with 6.1: only the Windows agent is unserved")

	res = ansibletest.Run(t, context.Background(), "agent_facts", New(), labArgs(l), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.Nil(t, ansibletest.Get(res, "warnings"), "the lab's table pairs everything")
	assert.EqualValues(t, 0, ansibletest.Get(res, "ansible_facts", "ksvla", "summary", "unprotected"))

	args["compatibility"] = map[string]any{"6.2": map[string]any{"kesl": []any{12.2}}}
	res = ansibletest.Run(t, context.Background(), "agent_facts", New(), args, ansibletest.Mode{})
	require.True(t, res.Failed())
	assert.Equal(t, `compatibility: 6.2 -> kesl: version 12.2 is not a string (quote it: "12.2")`, res.Msg())
}

func TestConnectionErrors(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: 1})
	ctx := context.Background()
	tests := map[string]struct {
		change  map[string]any
		drop    []string
		wantMsg string
	}{
		"missing hostname names option and variable": {drop: []string{"hostname"}, wantMsg: "hostname is required: set the hostname option or export VMWARE_HOST=..."},
		"missing ksc_url": {drop: []string{"ksc_url"}, wantMsg: "ksc_url is required: set the ksc_url option or export KSC_URL=..."},
		"wrong thumbprint refused": {change: map[string]any{"thumbprint": "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD", "ca_file": nil},
			wantMsg: "thumbprint"},
		"untrusted KSC certificate refused": {drop: []string{"ksc_ca_file"}, wantMsg: "certificate"},
		"missing target_version":            {drop: []string{"target_version"}, wantMsg: "missing required arguments: target_version"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := labArgs(l)
			for _, d := range tc.drop {
				delete(args, d)
			}
			for k, v := range tc.change {
				args[k] = v
			}
			res := ansibletest.Run(t, ctx, "agent_facts", New(), args, ansibletest.Mode{})
			require.True(t, res.Failed())
			assert.Contains(t, res.Msg(), tc.wantMsg)
			raw, _ := json.Marshal(res)
			assert.NotContains(t, string(raw), l.Vars(l.Dir()).VCenterPassword)
		})
	}
}
