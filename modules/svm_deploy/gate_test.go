package svmdeploy

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// A rollback removes the new SVM while the Light Agent update runs in
// KSC. The lab's KSC hook lands the update between the gates read in
// Observe (they pass: the agents are old) and the deletion: Apply reads
// them again and refuses, and no agent loses its SVM.
func TestAbsentRechecksGatesAtDeletion(t *testing.T) {
	var calls, updateAt atomic.Int64
	var lab atomic.Pointer[sim.Lab]
	hookErr := make(chan error, 1)
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: 2, KSCHook: func(string) {
		if calls.Add(1) == updateAt.Load() {
			hookErr <- lab.Load().UpdateAgentsNow(context.Background())
		}
	}})
	lab.Store(e.l)
	ctx := ctxFor(t)
	host := e.v.ESXiHosts[0]
	newSVM := labtest.DeployNewSVM(t, e.l, e.s, host)
	labtest.PrepareSVMs(t, e.l) // agents connect only to an activated SVM
	args := labtest.Args(e.args(host, newSVM, map[string]any{"state": "absent", "image": nil, "datastore": nil}),
		labtest.KSCArgs(e.v), labtest.FleetArgs(e.v))

	// Check mode runs Observe alone: its KSC calls are the ones before
	// the deletion's re-check.
	calls.Store(0)
	check := e.run(t, ctx, args, ansibletest.Mode{Check: true})
	require.False(t, check.Failed(), check.Msg())
	assert.True(t, check.Changed(), "the gates pass while the agents are old")
	observe := calls.Load()
	require.Positive(t, observe)

	calls.Store(0)
	updateAt.Store(observe + 1)
	res := e.run(t, ctx, args, ansibletest.Mode{})
	select {
	case err := <-hookErr:
		require.NoError(t, err)
	default:
		t.Fatalf("no KSC call after Observe: the gates were not read again before the deletion (%s)", res.Msg())
	}
	require.True(t, res.Failed(), "removed an SVM the agents had just moved to")
	assert.Equal(t, newSVM+" on "+host+" blocked by safety gates at removal time: no_agent_needs_it: 2 Light Agent(s) on "+host+
		" still need it: vm-esxi-01-001 (KES 12.6.0.200), vm-esxi-01-002 (kesl 12.2.0.400); not touched, nor: none", res.Msg())
	assert.Len(t, e.vms(t, newSVM), 1)
	require.NoError(t, e.l.Sync(ctx))
	assert.Empty(t, e.l.Gaps())
}
