package svmremove

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// Host 1 is upgraded (new SVM, its agent updated), host 2 has its new SVM
// but its agent still runs the old Light Agent, and the agents look for an
// SVM on their own host only (extended algorithm, hypervisor scope). DRS
// may move host 2's VM onto host 1 at any time, so host 1's old SVM stays
// until that agent is updated: the gate names it, and once DRS moves it
// there the old SVM serves it. With the lab's vCenter saying the protected
// VMs stay (DRS overrides) while its DRS moves them anyway, the gate lets
// the removal through and the moved VM loses its protection: the test can
// fail.
func TestGateBlocksWhileDRSCanMoveAnOldAgentHere(t *testing.T) {
	for name, gateBlind := range map[string]bool{"DRS moves protected VMs": false, "the gate told they stay": true} {
		t.Run(name, func(t *testing.T) {
			l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1, DRSInterval: -1, AgentSelection: sim.SelectHypervisor,
				ProtectedVMsStay: gateBlind, DRSIgnoresOverrides: gateBlind})
			s := labtest.VSphere(t, l)
			hosts := l.Vars(l.Dir()).ESXiHosts
			labtest.DeployNewSVM(t, l, s, hosts[0])
			labtest.UpdateAgents(t, l)
			labtest.DeployNewSVM(t, l, s, hosts[1])
			labtest.PrepareSVMs(t, l) // host 2's new SVM serves updated agents; its own agent stays old
			ctx := context.Background()
			args := labtest.Args(labArgs(l), map[string]any{"version": "6.1.0.100", "esxi_hostnames": []any{hosts[0]}})
			arriving := protectedVM(l, 1)

			res := ansibletest.Run(t, ctx, "svm_remove", New(), args, ansibletest.Mode{})
			if !gateBlind {
				require.True(t, res.Failed(), res.Msg())
				assert.Contains(t, res.Msg(), "svm-esxi-01-6.1 on esxi-01.lab.local (6.1.0.100): no_agent_needs_it: 1 Light Agent(s) of cluster "+
					l.Vars(l.Dir()).Cluster+" that DRS can move here would need it (on its new host an agent looks for an SVM there first, and with the extended algorithm only there): "+
					"esxi-02.lab.local's "+arriving+" (KES 12.5.0.100, not updated) can be moved here by DRS")
				assert.Contains(t, vms(t, s), oldSVM(l, 0))
			} else {
				require.False(t, res.Failed(), res.Msg())
				assert.NotContains(t, vms(t, s), oldSVM(l, 0))
			}

			require.NoError(t, l.DRSPass(ctx))
			require.NoError(t, l.Sync(ctx))
			require.NotEmpty(t, l.AgentMoves())
			require.Eventually(t, func() bool { return l.Status().Hosts[0].Agents["12.5.0.100"] == 1 }, 10*time.Second, 20*time.Millisecond,
				"the lab sees %s on %s", arriving, hosts[0])
			require.NoError(t, l.Sync(ctx))
			var arrived []sim.Gap
			for _, g := range l.Gaps() {
				if g.VM == arriving {
					arrived = append(arrived, g)
				}
			}
			if !gateBlind {
				assert.Empty(t, l.Gaps(), "the old SVM kept serves the agent DRS moved onto its host")
				return
			}
			require.Len(t, arrived, 1, "%+v", l.Gaps())
			assert.Equal(t, hosts[0], arrived[0].Host)
		})
	}
}

// Hosts 1 and 2 are upgraded (new SVM, their agents updated), host 3 has
// its new SVM but its agent still runs the old Light Agent, and DRS may
// move that VM anywhere in the cluster. With agent_selection standard or
// cluster the old SVMs of hosts 1 and 2 go at once, while host 3's old SVM
// (the anchor: its name sorts last) stays; when DRS then moves the old
// agent onto host 1 it connects to the anchor, if the lab's agents select
// SVMs that way. With the lab's agents limited to their hypervisor and the
// option wrongly saying standard, the moved agent finds no SVM: a gap, so
// the test can fail.
func TestRemoveAllButTheAnchorUnderAgentSelection(t *testing.T) {
	for name, tc := range map[string]struct {
		lab, option string
		gap         bool
	}{
		"standard":                               {sim.SelectStandard, "standard", false},
		"cluster":                                {sim.SelectCluster, "cluster", false},
		"agents use hypervisor, option standard": {sim.SelectHypervisor, "standard", true},
	} {
		t.Run(name, func(t *testing.T) {
			l := labtest.Start(t, sim.Config{Hosts: 3, VMsPerHost: 1, DRSInterval: -1, AgentSelection: tc.lab})
			s := labtest.VSphere(t, l)
			hosts := l.Vars(l.Dir()).ESXiHosts
			labtest.DeployNewSVM(t, l, s, hosts[0])
			labtest.DeployNewSVM(t, l, s, hosts[1])
			labtest.UpdateAgents(t, l)
			labtest.DeployNewSVM(t, l, s, hosts[2])
			labtest.PrepareSVMs(t, l) // host 3's agent stays old
			ctx := context.Background()
			arriving := protectedVM(l, 2)
			args := labtest.Args(labArgs(l), map[string]any{"version": "6.1.0.100", "esxi_hostnames": []any{hosts[0], hosts[1]},
				"agent_selection": tc.option})

			res := ansibletest.Run(t, ctx, "svm_remove", New(), args, ansibletest.Mode{})
			require.False(t, res.Failed(), res.Msg())
			left := vms(t, s)
			assert.NotContains(t, left, oldSVM(l, 0))
			assert.NotContains(t, left, oldSVM(l, 1))
			assert.Contains(t, left, oldSVM(l, 2))
			assert.Equal(t, "no Light Agent on "+hosts[0]+" needs Protection Server 6.1.0.100; 1 Light Agent(s) not updated of cluster "+l.Vars(l.Dir()).Cluster+
				" that DRS can move here can use "+oldSVM(l, 2)+", the anchor kept for them (agent_selection "+tc.option+")",
				ansibletest.Get(res, "removed", 0, "gates", 0, "reason"))

			// The anchor itself stays while the agent is old.
			anchor := labtest.Args(labArgs(l), map[string]any{"version": "6.1.0.100", "esxi_hostnames": []any{hosts[2]},
				"agent_selection": tc.option})
			res = ansibletest.Run(t, ctx, "svm_remove", New(), anchor, ansibletest.Mode{Check: true})
			require.True(t, res.Failed(), res.Msg())
			assert.Contains(t, res.Msg(), oldSVM(l, 2)+" on "+hosts[2])
			assert.Empty(t, l.Gaps(), "the removals left an agent without an SVM")

			require.NoError(t, l.DRSPass(ctx))
			require.NoError(t, l.Sync(ctx))
			require.Eventually(t, func() bool { return l.Status().Hosts[0].Agents["12.5.0.100"] == 1 }, 10*time.Second, 20*time.Millisecond,
				"DRS moved %s onto %s", arriving, hosts[0])
			require.NoError(t, l.Sync(ctx))
			if !tc.gap {
				assert.Empty(t, l.Gaps(), "the old agent DRS moved onto %s takes the anchor", hosts[0])
				return
			}
			require.Len(t, l.Gaps(), 1, "%+v", l.Gaps())
			assert.Equal(t, arriving, l.Gaps()[0].VM)
			assert.Equal(t, hosts[0], l.Gaps()[0].Host)
		})
	}
}
