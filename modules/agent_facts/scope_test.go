package agentfacts

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// esxi_hostnames scopes the answer: only those hosts' SVMs and agents,
// the others counted as outside the scope, none reported unprotected.
// Unscoped, an agent KSC lists with no VM behind it is unplaced: its
// protection unknown (null), not false.
func TestScopeHolds(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 3, VMsPerHost: 2})
	v := l.Vars(l.Dir())
	p := l.Config().AgentProducts[0]
	l.KSC().UpsertHost(kscsim.Host{DisplayName: "vm-elsewhere", IP: "10.99.0.1", Products: []kscsim.Product{
		{Key: p.Key, Version: p.OldVersion, DisplayName: p.DisplayName, ProdVersion: p.OldVersion}}})
	ctx := context.Background()

	one := ansibletest.Run(t, ctx, "agent_facts", New(), labtest.Args(labArgs(l), map[string]any{"esxi_hostnames": []any{v.ESXiHosts[0]}}), ansibletest.Mode{})
	require.False(t, one.Failed(), one.Msg())
	agents, _ := one["agents"].([]any)
	require.Len(t, agents, 2)
	for _, a := range agents {
		assert.Equal(t, v.ESXiHosts[0], ansibletest.Get(a, "host"))
		assert.Equal(t, true, ansibletest.Get(a, "protected"))
	}
	for _, s := range ansibletest.Get(one, "ansible_facts", "ksvla", "svms").([]any) {
		assert.Equal(t, v.ESXiHosts[0], ansibletest.Get(s, "host"))
	}
	assert.EqualValues(t, 5, ansibletest.Get(one, "ansible_facts", "ksvla", "summary", "agents_outside_scope"), "4 agents of 2 other hosts and one of nowhere")
	assert.EqualValues(t, 0, ansibletest.Get(one, "ansible_facts", "ksvla", "summary", "unprotected"))
	assert.Empty(t, ansibletest.Get(one, "ansible_facts", "ksvla", "unmatched_ksc_hosts"))

	all := ansibletest.Run(t, ctx, "agent_facts", New(), labArgs(l), ansibletest.Mode{})
	require.False(t, all.Failed(), all.Msg())
	var unplaced []any
	for _, a := range all["agents"].([]any) {
		if ansibletest.Get(a, "unplaced") == true {
			unplaced = append(unplaced, a)
		} else {
			assert.Equal(t, true, ansibletest.Get(a, "protected"))
		}
	}
	require.Len(t, unplaced, 1)
	assert.Equal(t, "vm-elsewhere", ansibletest.Get(unplaced[0], "name"))
	assert.Nil(t, ansibletest.Get(unplaced[0], "protected"), "unknown, not unprotected")
	assert.EqualValues(t, 1, ansibletest.Get(all, "ansible_facts", "ksvla", "summary", "agents_unplaced"))
	assert.EqualValues(t, 0, ansibletest.Get(all, "ansible_facts", "ksvla", "summary", "unprotected"))
}

// A scope narrowed to hosts reads the datacenter's inventory once: the
// hosts' VMs and, for the removal gate, the VMs DRS may move onto them
// come from the same pass, so it costs vCenter no more round trips than
// the whole datacenter (every scope reads the DRS settings and the SVMs'
// placements once). Read twice, it cost a view, its pages and its
// teardown more.
func TestNarrowedScopeRoundTrips(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 3, VMsPerHost: 2, DRSInterval: -1})
	v := l.Vars(l.Dir())
	ctx := context.Background()
	trips := func(args map[string]any) float64 {
		res := ansibletest.Run(t, ctx, "agent_facts", New(), args, ansibletest.Mode{})
		require.False(t, res.Failed(), res.Msg())
		n, ok := ansibletest.Get(res, "round_trips", "vcenter").(int64)
		require.True(t, ok, "round_trips.vcenter: %v", ansibletest.Get(res, "round_trips"))
		return float64(n)
	}
	whole := trips(labArgs(l))
	narrowed := trips(labtest.Args(labArgs(l), map[string]any{"esxi_hostnames": []any{v.ESXiHosts[0]}}))
	assert.Equal(t, whole, narrowed, "vCenter round trips: whole datacenter %v, one host %v", whole, narrowed)
}
