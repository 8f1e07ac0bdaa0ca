package tests

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// The lab as a site runs it: DRS moves the protected VMs every 2 s while
// upgrade.yml runs, and their agents look for an SVM from wherever they
// are. With the standard algorithm (the vendor's default) and the default
// waves, and with the extended algorithm limited to the hypervisor in one
// wave (new SVMs everywhere before any agent is updated), no protected VM
// is ever without a compatible SVM: no host's old SVM goes while an agent
// DRS can move there still needs it (svm_remove's drs_test.go shows the
// gap when the gate is blind to it). Stating the standard algorithm or
// the cluster scope (ksvla_agent_selection), hosts remove their old SVMs
// in parallel while one of the cluster, the anchor, stays for the agents
// not updated: still no gap.
func TestUpgradeWhileDRSMovesAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	for name, tc := range map[string]struct {
		selection string
		args      []string
	}{
		"standard algorithm, waves":       {sim.SelectStandard, nil},
		"hypervisor scope, a single wave": {sim.SelectHypervisor, []string{"-e", `{"upgrade_waves": ["100%"]}`}},
		// Stated: the old SVMs other than each cluster's anchor go while agents are old.
		"standard algorithm stated, waves": {sim.SelectStandard, []string{"-e", "ksvla_agent_selection=standard"}},
		"cluster scope stated, waves":      {sim.SelectCluster, []string{"-e", "ksvla_agent_selection=cluster"}},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			l := labtest.Start(t, sim.Config{Hosts: 4, VMsPerHost: 2, DRSInterval: 2 * time.Second, AgentSelection: tc.selection})
			run := upgrade(t, ctx, l, playtest.Options{Args: append([]string{"--forks", "4"}, tc.args...)})
			require.Zero(t, run.ExitCode, tail(run.Output))
			assertUpgraded(t, l)
			assert.Empty(t, l.Gaps())
			assert.NotEmpty(t, l.AgentMoves(), "DRS moved no protected VM")
			assert.Empty(t, l.Moves(), "DRS moved an SVM")
		})
	}
}

// A host left out of the run (no room for a second SVM,
// preflight_capacity=skip) keeps its old SVM and its agents, not updated,
// which fully automated DRS may move to any host of the cluster. Under
// ksvla_agent_selection hypervisor (the default) every other host's old
// SVM waits for them, and the run fails once agent_wait_retries are
// spent; stating the policy's standard algorithm, the left-out host's old
// SVM is the anchor those agents keep (its name does not sort last: the
// host's own removal cannot pass) and the other hosts finish. DRS then
// moves the left-out host's agent onto an upgraded host, where it takes
// the anchor: no protected VM is ever without an SVM.
func TestLeftOutHostUnderStandardSelection(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	small := "esxi-02.lab.local"
	// DRS on and fully automated for the protected VMs; its passes only
	// when the test makes them, so the left-out host's agent is still old
	// (not moved to an upgraded host, where the update task would reach it)
	// when the other hosts remove their old SVMs.
	l := labtest.Start(t, sim.Config{Hosts: 3, VMsPerHost: 1, SmallHost: small, DRSInterval: -1, AgentSelection: sim.SelectStandard})
	v := l.Vars(l.Dir())
	args := []string{"-e", "preflight_capacity=skip", "-e", "agent_wait_retries=3"}

	stuck := upgrade(t, ctx, l, playtest.Options{Args: args})
	require.NotZero(t, stuck.ExitCode, tail(stuck.Output))
	assert.Contains(t, stuck.Output, "can be moved here by DRS")

	run := upgrade(t, ctx, l, playtest.Options{Args: append(args, "-e", "ksvla_agent_selection=standard")})
	require.Zero(t, run.ExitCode, tail(run.Output))
	for _, h := range l.Status().Hosts {
		want := v.NewVersion
		if h.Name == small {
			want = v.OldVersion
		}
		require.Len(t, h.SVMs, 1, "%s: %+v", h.Name, h.SVMs)
		assert.Equal(t, want, h.SVMs[0].Version, h.Name)
	}
	assert.Empty(t, l.Gaps())

	require.NoError(t, l.DRSPass(ctx))
	require.NoError(t, l.Sync(ctx))
	moved := false
	for _, m := range l.AgentMoves() {
		moved = moved || m.From == small
	}
	require.True(t, moved, "DRS moved no agent off %s: %+v", small, l.AgentMoves())
	assert.Empty(t, l.Gaps(), "an agent DRS moved found no SVM")
}
