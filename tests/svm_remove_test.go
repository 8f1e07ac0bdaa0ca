package tests

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// svm_remove through the real ansible-playbook: on a fully upgraded 2-host
// lab, --check --diff predicts and changes nothing, the run removes the old
// SVMs by version, the rerun changes nothing; on a lab whose Light Agents
// lag, the removal is refused by the agent gate.
func TestSVMRemovePlaybook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	vmNames := func(t *testing.T, s *vsphere.Session) map[string]bool {
		list, err := s.Inventory(ctx, vsphere.Scope{})
		require.NoError(t, err)
		out := map[string]bool{}
		for _, v := range list {
			out[v.Name] = true
		}
		return out
	}
	opts := func(l *sim.Lab, playbook string, check bool) playtest.Options {
		return playtest.Options{Playbook: playbook, Check: check, Diff: check,
			ExtraVars: map[string]any{"lab_vars": filepath.Join(l.Dir(), "vars.yml")}}
	}

	t.Run("upgraded lab", func(t *testing.T) {
		l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1})
		s := labtest.VSphere(t, l)
		v := l.Vars(l.Dir())
		for _, h := range v.ESXiHosts {
			labtest.DeployNewSVM(t, l, s, h)
		}
		labtest.UpdateAgents(t, l)
		var old []string
		for _, h := range l.VCenter().Inventory().Hosts {
			old = append(old, h.OldSVM)
		}
		const task = "Remove the old SVMs"

		check, err := playtest.Playbook(ctx, opts(l, "tests/playbooks/svm_remove.yml", true))
		require.NoError(t, err)
		require.Equal(t, 0, check.ExitCode, check.Output)
		assert.Equal(t, 1, check.Stats["localhost"].Changed, check.Output)
		require.Len(t, check.Task(task), 1)
		assert.Equal(t, "would remove 2 SVM(s): svm-esxi-01-6.1 (6.1.0.100 on esxi-01.lab.local), svm-esxi-02-6.1 (6.1.0.100 on esxi-02.lab.local)",
			check.Task(task)[0].Msg())
		assert.Contains(t, check.Output, `"power_state": "poweredOn"`, "--diff shows the SVMs before")
		for _, n := range old {
			assert.True(t, vmNames(t, s)[n], "--check keeps %s", n)
		}

		first, err := playtest.Playbook(ctx, opts(l, "tests/playbooks/svm_remove.yml", false))
		require.NoError(t, err)
		require.Equal(t, 0, first.ExitCode, first.Output)
		assert.Equal(t, 1, first.Stats["localhost"].Changed, first.Output)
		require.Len(t, first.Task(task), 1)
		assert.Equal(t, "removed 2 SVM(s): svm-esxi-01-6.1 (6.1.0.100 on esxi-01.lab.local), svm-esxi-02-6.1 (6.1.0.100 on esxi-02.lab.local)",
			first.Task(task)[0].Msg())
		names := vmNames(t, s)
		for _, n := range old {
			assert.False(t, names[n], "%s is gone from vCenter", n)
		}
		for _, h := range v.ESXiHosts {
			assert.True(t, names[labtest.NewSVMName(l, h)], "the new SVM on %s stays", h)
		}

		rerun, err := playtest.Playbook(ctx, opts(l, "tests/playbooks/svm_remove.yml", false))
		require.NoError(t, err)
		require.Equal(t, 0, rerun.ExitCode, rerun.Output)
		assert.Equal(t, 0, rerun.Stats["localhost"].Changed, rerun.Output)
		assert.Equal(t, "no SVM of version 6.1.0.100 in scope; nothing to remove", rerun.Task(task)[0].Msg())

		for _, run := range []*playtest.Run{check, first, rerun} {
			assert.NotContains(t, run.Output, v.VCenterPassword)
			assert.NotContains(t, run.Output, v.KSCPassword)
		}
		require.NoError(t, l.Sync(ctx))
		assert.Empty(t, l.Gaps())
	})

	t.Run("agents lag", func(t *testing.T) {
		l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1})
		s := labtest.VSphere(t, l)
		for _, h := range l.Vars(l.Dir()).ESXiHosts {
			labtest.DeployNewSVM(t, l, s, h)
		}
		before := vmNames(t, s)

		run, err := playtest.Playbook(ctx, opts(l, "tests/playbooks/svm_remove_refused.yml", false))
		require.NoError(t, err)
		require.Equal(t, 0, run.ExitCode, run.Output)
		assert.Equal(t, 1, run.Stats["localhost"].Ignored, run.Output)
		assert.Equal(t, 0, run.Stats["localhost"].Changed, run.Output)
		res := run.Task("Remove the old SVMs")
		require.Len(t, res, 1)
		assert.Contains(t, res[0].Msg(), "refusing to remove any SVM: 2 selected SVM(s) blocked by safety gates: "+
			"svm-esxi-01-6.1 on esxi-01.lab.local (6.1.0.100): no_agent_needs_it: 1 Light Agent(s) on esxi-01.lab.local still need it")
		assert.Equal(t, before, vmNames(t, s), "nothing removed")
		assert.Empty(t, l.Gaps())
	})
}
