package svmdeploy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
)

// An SVM found without its pin (deployed by a version that did not pin, or
// its overrides removed by hand) is pinned and reported changed; check mode
// predicts it and the diff shows each setting; the next run changes nothing.
// Outside an HA cluster the pin includes the host's autostart entry.
func TestPinsAnUnpinnedSVM(t *testing.T) {
	for name, noHA := range map[string]bool{"HA cluster": false, "no HA": true} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1, DRSInterval: -1, NoHA: noHA})
			ctx := ctxFor(t)
			host := e.v.ESXiHosts[0]
			svm := e.v.SVMs[host]
			res := e.run(t, ctx, e.args(host, svm, nil), ansibletest.Mode{})
			require.False(t, res.Failed(), res.Msg())
			want := map[string]any{"drs_automation_disabled": true, "ha_restart_disabled": true}
			if noHA {
				want["autostart"] = true
			}
			assert.Equal(t, want, ansibletest.Get(res, "diff", "after", "pin"))

			vm, err := e.s.VM(ctx, nil, svm)
			require.NoError(t, err)
			pl, err := e.s.Placement(ctx, vm)
			require.NoError(t, err)
			require.True(t, pl.Pinned(), "%v", pl.Missing())
			require.NoError(t, e.s.Unpin(ctx, pl))
			pl, err = e.s.Placement(ctx, vm)
			require.NoError(t, err)
			want["drs_automation_disabled"], want["ha_restart_disabled"] = false, false
			if !noHA {
				require.Equal(t, []string{"DRS override", "HA override"}, pl.Missing())
			}

			check := e.run(t, ctx, e.args(host, svm, nil), ansibletest.Mode{Check: true})
			require.False(t, check.Failed(), check.Msg())
			assert.True(t, check.Changed())
			assert.Equal(t, []any{StepPin}, check["plan"])
			before := ansibletest.Get(check, "diff", "before", "pin").(map[string]any)
			assert.Equal(t, false, before["drs_automation_disabled"])
			assert.Equal(t, false, before["ha_restart_disabled"])
			pl, err = e.s.Placement(ctx, vm)
			require.NoError(t, err)
			assert.False(t, pl.Pinned(), "check mode changed nothing")

			res = e.run(t, ctx, e.args(host, svm, nil), ansibletest.Mode{})
			require.False(t, res.Failed(), res.Msg())
			assert.True(t, res.Changed())
			assert.True(t, strings.Contains(res.Msg(), "pinned to its host"), res.Msg())
			pl, err = e.s.Placement(ctx, vm)
			require.NoError(t, err)
			assert.True(t, pl.Pinned(), "%v", pl.Missing())

			again := e.run(t, ctx, e.args(host, svm, nil), ansibletest.Mode{})
			require.False(t, again.Failed(), again.Msg())
			assert.False(t, again.Changed(), fmt.Sprint(again["plan"]))
		})
	}
}
