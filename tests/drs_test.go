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
// gap when the gate is blind to it).
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
