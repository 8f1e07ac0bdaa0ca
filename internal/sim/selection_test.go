package sim

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An agent whose host loses its SVM looks for another by the policy's
// algorithm: the standard one (and the extended one with cluster scope)
// falls back to the SVM of another host, the hypervisor scope to none.
func TestAgentSelection(t *testing.T) {
	ctx := context.Background()
	for sel, wantGap := range map[string]bool{SelectStandard: false, SelectCluster: false, SelectHypervisor: true} {
		t.Run(sel, func(t *testing.T) {
			l := startLab(t, Config{Hosts: 2, VMsPerHost: 1, DRSInterval: -1, AgentSelection: sel})
			_, f := labClient(t, l)
			old, err := f.VirtualMachine(ctx, "svm-esxi-01-6.1")
			require.NoError(t, err)
			task, err := old.PowerOff(ctx)
			require.NoError(t, err)
			require.NoError(t, task.Wait(ctx))
			eventually(t, func() bool { return l.Status().Hosts[0].SVMs[0].Power == "off" })
			require.NoError(t, l.Sync(ctx))
			if wantGap {
				require.Len(t, l.Gaps(), 1)
				assert.Equal(t, "vm-esxi-01-001", l.Gaps()[0].VM)
				assert.Contains(t, l.Gaps()[0].Reason, "no powered-on, KSC-connected, activated SVM on esxi-01.lab.local serves KES 12.5.0.100")
				return
			}
			assert.Empty(t, l.Gaps())
			st := l.Status()
			assert.Equal(t, 2, st.Hosts[1].SVMs[0].Agents, "esxi-02's SVM serves both agents: %+v", st.Hosts)
			assert.Zero(t, st.Hosts[0].Unprotected)
		})
	}
	_, err := Start(ctx, Config{AgentSelection: "datacenter"})
	assert.EqualError(t, err, `start lab: agent selection "datacenter": want standard, hypervisor or cluster`)
}

// By default DRS moves the protected VMs as any other VM, and their agents
// follow them; ProtectedVMsStay gives them DRS overrides that hold them.
func TestDRSMovesProtectedVMs(t *testing.T) {
	ctx := context.Background()
	for name, stay := range map[string]bool{"at a site": false, "protected VMs stay": true} {
		t.Run(name, func(t *testing.T) {
			l := startLab(t, Config{Hosts: 2, VMsPerHost: 1, DRSInterval: -1, AgentSelection: SelectHypervisor, ProtectedVMsStay: stay})
			require.NoError(t, l.DRSPass(ctx))
			require.NoError(t, l.Sync(ctx))
			assert.Empty(t, l.Moves(), "the seeded SVMs are pinned")
			if stay {
				assert.Empty(t, l.AgentMoves())
				return
			}
			require.Len(t, l.AgentMoves(), 2)
			eventually(t, func() bool {
				l.mu.Lock()
				defer l.mu.Unlock()
				return l.agents["vm-esxi-01-001"].host == "esxi-02.lab.local" && l.agents["vm-esxi-02-001"].host == "esxi-01.lab.local"
			})
			// Each now takes the SVM of its new host.
			l.mu.Lock()
			assert.Equal(t, "svm-esxi-02-6.1", l.agents["vm-esxi-01-001"].svm)
			assert.Equal(t, "svm-esxi-01-6.1", l.agents["vm-esxi-02-001"].svm)
			l.mu.Unlock()
			assert.Empty(t, l.Gaps())
		})
	}
}
