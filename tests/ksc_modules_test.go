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
	"github.com/ksvla/lightagent/internal/sim/kscsim"
	"github.com/ksvla/lightagent/internal/sim/svm"
)

// ksc_task and ksc_purge through the real ansible-playbook against a
// 2-host lab: --check --diff predicts a change and changes nothing, the
// first run changes, the rerun changes nothing; the passwords never show.
func TestKSCModulesPlaybooks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	// The lab's table lets the old SVMs serve the new agent version too,
	// so the update task succeeds without deploying new SVMs.
	lab, err := sim.Start(ctx, sim.Config{
		Hosts: 2, VMsPerHost: 1, SSHPort: svm.EphemeralPort, Dir: filepath.Join(dir, "lab"), ImageBytes: 4096,
		OldAgentVersion: "12.5.0.100", NewAgentVersion: "12.5.0.500", AgentUpdateDuration: 200 * time.Millisecond,
		Compatibility:     map[string]map[string][]string{"6.1.0.100": {"KES": {"12.5"}, "kesl": {"12.5"}}},
		HeartbeatInterval: 50 * time.Millisecond, Logf: t.Logf,
	})
	require.NoError(t, err)
	t.Cleanup(lab.Close)
	labDir := filepath.Join(dir, "files")
	require.NoError(t, lab.WriteFiles(labDir))
	vars := lab.Vars(labDir)
	k := lab.KSC()

	agents := func() map[string]int {
		out := map[string]int{}
		for _, h := range lab.Status().Hosts {
			for v, n := range h.Agents {
				out[v] += n
			}
		}
		return out
	}

	t.Run("ksc_task", func(t *testing.T) {
		opts := func(check bool) playtest.Options {
			return playtest.Options{Playbook: "tests/playbooks/ksc_task.yml", Check: check, Diff: check,
				ExtraVars: map[string]any{"lab_vars": filepath.Join(labDir, "vars.yml")}}
		}
		const update = "Update the Light Agents"

		check, err := playtest.Playbook(ctx, opts(true))
		require.NoError(t, err)
		require.Equal(t, 0, check.ExitCode, check.Output)
		assert.Equal(t, 2, check.Stats["localhost"].Changed, check.Output)
		assert.Zero(t, k.Calls()["Tasks.RunTask"], "--check must not start the task")
		assert.Equal(t, map[string]int{"12.5.0.100": 2}, agents())
		assert.Contains(t, check.Output, `"state": "scheduled"`, "--diff shows the state before")

		first, err := playtest.Playbook(ctx, opts(false))
		require.NoError(t, err)
		require.Equal(t, 0, first.ExitCode, first.Output)
		assert.Equal(t, 2, first.Stats["localhost"].Changed, first.Output)
		require.Len(t, first.Task(update), 1)
		assert.Equal(t, "KSC task Update Light Agent completed on 2 targets", first.Task(update)[0].Msg(), "one per protected VM")
		assert.Equal(t, map[string]int{"12.5.0.500": 2}, agents())

		rerun, err := playtest.Playbook(ctx, opts(false))
		require.NoError(t, err)
		require.Equal(t, 0, rerun.ExitCode, rerun.Output)
		assert.Equal(t, 0, rerun.Stats["localhost"].Changed, rerun.Output)
		assert.Equal(t, 2, k.Calls()["Tasks.RunTask"], "completed tasks are not started again")

		for _, run := range []*playtest.Run{check, first, rerun} {
			assert.Equal(t, 1, run.Stats["localhost"].Ignored, "the missing task fails in every run")
			assert.NotContains(t, run.Output, vars.KSCPassword)
		}
	})

	// A task that fails on a device: the warning Ansible prints names it.
	t.Run("ksc_task failed targets", func(t *testing.T) {
		const failure, vm = "Installation package not found", "vm-esxi-02-001"
		require.Len(t, k.FindByName(vm), 1, "the lab's VM on esxi-02")
		k.SetFailTasksOn(map[string]string{vm: failure})
		t.Cleanup(func() { k.SetFailTasksOn(nil) })
		run, err := playtest.Playbook(ctx, playtest.Options{Playbook: "tests/playbooks/ksc_task_failed_targets.yml",
			ExtraVars: map[string]any{"lab_vars": filepath.Join(labDir, "vars.yml"), "failing_vm": vm, "failure": failure}})
		require.NoError(t, err)
		require.Equal(t, 0, run.ExitCode, run.Output)
		res := run.Task("Update the Light Agents")
		require.Len(t, res, 1)
		assert.Regexp(t, `^KSC task Update Light Agent failed on 1 of 2 targets: vm-esxi-02-001 \[[^]]+\]: `+failure+`$`, res[0].Msg())
		assert.Regexp(t, `\[WARNING\]: KSC task Update Light Agent failed on 1 of 2 targets: vm-esxi-02-001`, run.Output)
		assert.NotContains(t, run.Output, "vm-esxi-01-001 [", "only the failed VM is named")
		assert.NotContains(t, run.Output, vars.KSCPassword)
	})

	t.Run("ksc_purge", func(t *testing.T) {
		// The record of an SVM whose VM is gone from vCenter, as KSC keeps it
		// until the group's retention period.
		const gone = "svm-esxi-09-6.1"
		goneID := k.UpsertHost(kscsim.Host{DisplayName: gone, IP: "10.9.9.9", LastVisible: time.Now().Add(-time.Hour),
			Products: []kscsim.Product{{Key: vars.PSProductKey, Version: vars.OldVersion, ProdVersion: vars.OldVersion}}})
		running := lab.Status().Hosts[0].SVMs[0].Name
		opts := func(check bool) playtest.Options {
			return playtest.Options{Playbook: "tests/playbooks/ksc_purge.yml", Check: check, Diff: check,
				ExtraVars: map[string]any{"lab_vars": filepath.Join(labDir, "vars.yml"), "gone_svm": gone, "running_svm": running}}
		}
		const purge = "Remove the removed SVM's record"

		check, err := playtest.Playbook(ctx, opts(true))
		require.NoError(t, err)
		require.Equal(t, 0, check.ExitCode, check.Output)
		assert.Equal(t, 1, check.Stats["localhost"].Changed, check.Output)
		_, ok := k.Host(goneID)
		assert.True(t, ok, "--check must not remove the record")

		first, err := playtest.Playbook(ctx, opts(false))
		require.NoError(t, err)
		require.Equal(t, 0, first.ExitCode, first.Output)
		assert.Equal(t, 1, first.Stats["localhost"].Changed, first.Output)
		require.Len(t, first.Task(purge), 1)
		assert.Equal(t, "removed 1 KSC records", first.Task(purge)[0].Msg())
		_, ok = k.Host(goneID)
		assert.False(t, ok, "the record is gone")

		rerun, err := playtest.Playbook(ctx, opts(false))
		require.NoError(t, err)
		require.Equal(t, 0, rerun.ExitCode, rerun.Output)
		assert.Equal(t, 0, rerun.Stats["localhost"].Changed, rerun.Output)
		assert.Equal(t, "no KSC record to remove (1 already absent)", rerun.Task(purge)[0].Msg())

		for _, run := range []*playtest.Run{check, first, rerun} {
			assert.Equal(t, 1, run.Stats["localhost"].Ignored, "the running SVM is refused in every run")
			assert.NotContains(t, run.Output, vars.KSCPassword)
			assert.NotContains(t, run.Output, vars.VCenterPassword)
		}
		assert.Len(t, k.FindByName(running), 1, "the running SVM's record stays")
	})
}
