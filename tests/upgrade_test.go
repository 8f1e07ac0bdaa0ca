package tests

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// upgradeArgs makes the waits of upgrade.yml fit a lab whose agents update
// in a fraction of a second.
var upgradeArgs = []string{"-e", "agent_wait_delay=1", "-e", "ksc_wait_delay=1", "-e", "ksc_task_poll=1"}

func upgrade(t *testing.T, ctx context.Context, l *sim.Lab, o playtest.Options) *playtest.Run {
	t.Helper()
	o.Playbook = "playbooks/upgrade.yml"
	o.Args = append(append([]string{"-e", "@" + filepath.Join(l.Dir(), "vars.yml")}, upgradeArgs...), o.Args...)
	run, err := playtest.Playbook(ctx, o)
	require.NoError(t, err)
	return run
}

func changedTasks(run *playtest.Run) []string {
	var out []string
	for _, t := range run.Tasks {
		if t.Changed() {
			out = append(out, t.Task)
		}
	}
	return out
}

// assertUpgraded checks the end state of the procedure on every host: only
// the new SVM, every agent on the new version, the old SVMs gone from KSC,
// and no protected VM left without a compatible SVM at any moment.
func assertUpgraded(t *testing.T, l *sim.Lab) {
	t.Helper()
	v := l.Vars(l.Dir())
	st := l.Status()
	for _, h := range st.Hosts {
		require.Len(t, h.SVMs, 1, "%s: %+v", h.Name, h.SVMs)
		assert.Equal(t, v.NewVersion, h.SVMs[0].Version, h.Name)
		assert.Equal(t, "on", h.SVMs[0].Power, h.Name)
		for ver := range h.Agents {
			assert.Contains(t, v.AgentVersions(true), ver, "%s still has agents on %s", h.Name, ver)
		}
		assert.Zero(t, h.Unprotected, h.Name)
	}
	for _, host := range l.KSC().Hosts() {
		for _, p := range host.Products {
			if p.Key == v.PSProductKey {
				assert.Equal(t, v.NewVersion, p.Version, "old SVM %s still in KSC", host.DisplayName)
			}
		}
	}
	assert.Empty(t, l.Gaps(), "a protected VM was without a compatible SVM")
}

func TestUpgradePlaybook(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 8, VMsPerHost: 2})
	before := l.Status()

	check := upgrade(t, ctx, l, playtest.Options{Check: true, Diff: true})
	require.Zero(t, check.ExitCode, check.Output)
	assert.Contains(t, changedTasks(check), "Deploy the new SVM (step 1)", "check mode predicts the deploys")
	assert.Equal(t, before, l.Status(), "--check changed the lab")

	run := upgrade(t, ctx, l, playtest.Options{Args: []string{"-e", "upgrade_batch_size=4", "--forks", "4"}})
	require.Zero(t, run.ExitCode, run.Output)
	assertUpgraded(t, l)

	again := upgrade(t, ctx, l, playtest.Options{})
	require.Zero(t, again.ExitCode, again.Output)
	assert.Empty(t, changedTasks(again), "a rerun after completion changes nothing")
	for host, s := range again.Stats {
		assert.Zero(t, s.Changed, host)
	}
}

// Killed in the middle of a batch, then rerun: the run converges with no
// duplicate SVM and no protection gap.
func TestUpgradeKilledMidBatchConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 4, VMsPerHost: 2})

	// Kill ansible-playbook as soon as the first new SVM exists in
	// vCenter, i.e. in the middle of the first batch.
	killCtx, kill := context.WithCancel(ctx)
	go func() {
		defer kill()
		for killCtx.Err() == nil {
			for _, h := range l.Status().Hosts {
				for _, s := range h.SVMs {
					if s.Version == l.Vars(l.Dir()).NewVersion {
						return
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	killed, err := playtest.Playbook(killCtx, playtest.Options{Playbook: "playbooks/upgrade.yml",
		Args: append([]string{"-e", "@" + filepath.Join(l.Dir(), "vars.yml"), "-e", "upgrade_batch_size=2"}, upgradeArgs...)})
	require.NoError(t, err)
	require.NotZero(t, killed.ExitCode, "the run was meant to be killed: %s", tail(killed.Output))

	run := upgrade(t, ctx, l, playtest.Options{Args: []string{"-e", "upgrade_batch_size=2"}})
	require.Zero(t, run.ExitCode, run.Output)
	assertUpgraded(t, l)
}

// assertPreparedBeforeRemoved checks the lab's history: each of the want
// old SVMs went only after its host's new SVM was activated and had
// databases.
func assertPreparedBeforeRemoved(t *testing.T, l *sim.Lab, want int) {
	t.Helper()
	prepared := map[string]map[string]bool{} // host -> kinds seen for its new SVM
	destroyed := 0
	for _, e := range l.History() {
		if strings.HasSuffix(e.SVM, "-6.2") && (e.Kind == sim.EventActivated || e.Kind == sim.EventDatabases) {
			if prepared[e.Host] == nil {
				prepared[e.Host] = map[string]bool{}
			}
			prepared[e.Host][e.Kind] = true
		}
		if e.Kind == sim.EventDestroyed && strings.HasSuffix(e.SVM, "-6.1") {
			destroyed++
			assert.True(t, prepared[e.Host][sim.EventActivated], "%s removed before its host's new SVM was activated", e.SVM)
			assert.True(t, prepared[e.Host][sim.EventDatabases], "%s removed before its host's new SVM had databases", e.SVM)
		}
	}
	assert.Equal(t, want, destroyed)
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// The realistic agent profile: Windows and Linux Light Agents of 12.x
// (-old-agent 12.5.0.100 -new-agent 12.6.0.200), product keys other than
// the defaults, and a compatibility table that is not the Protection
// Server's version line. Run 1 deploys and configures the new SVMs, then
// fails before activation (the activation task is misnamed); the rerun
// must still activate them and update their databases, because preparing
// is read from KSC, not inferred from "deploy changed". The lab shows each
// new SVM activated before its host's old SVM went, and no gap; a third
// run changes nothing and starts no KSC task.
func TestUpgradeRerunActivates(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l := startSiteLab(t, "LA", "Microsoft Windows 11", "Debian GNU/Linux 12")
	v := l.Vars(l.Dir())
	require.NotContains(t, v.Compatibility, "", "the table is data")

	first := upgrade(t, ctx, l, playtest.Options{Args: []string{"-e", "upgrade_batch_size=2", "-e", "ksc_activate_task=Missing-task"}})
	require.NotZero(t, first.ExitCode, "run 1 was meant to fail at activation: %s", tail(first.Output))
	assert.Contains(t, first.Output, "KSC task Missing-task not found")
	newSVMs := 0
	for _, h := range l.Status().Hosts {
		for _, s := range h.SVMs {
			if s.Version == v.NewVersion {
				newSVMs++
				assert.True(t, s.InKSC, "%s was configured before the failure", s.Name)
				assert.Zero(t, s.Agents, "%s is not activated: it serves nobody", s.Name)
			}
		}
	}
	require.Equal(t, 2, newSVMs, "run 1 deployed both new SVMs before it failed")
	for _, e := range l.History() {
		assert.NotEqual(t, sim.EventActivated, e.Kind, "run 1 activated %s", e.SVM)
	}

	// Check mode after the failure predicts the preparation from KSC's
	// state and changes nothing.
	starts, history := l.TaskStarts(), len(l.History())
	check := upgrade(t, ctx, l, playtest.Options{Check: true, Diff: true, Args: []string{"-e", "upgrade_batch_size=2"}})
	require.Zero(t, check.ExitCode, check.Output)
	assert.Contains(t, changedTasks(check), "Activate the new Protection Servers (step 4)")
	assert.Contains(t, changedTasks(check), "Update the new Protection Servers' databases (step 4)")
	assert.NotContains(t, changedTasks(check), "Deploy the new SVM (step 1)", "the new SVMs exist")
	assert.Equal(t, starts, l.TaskStarts(), "--check started a KSC task")
	assert.Len(t, l.History(), history, "--check prepared an SVM")

	run := upgrade(t, ctx, l, playtest.Options{Args: []string{"-e", "upgrade_batch_size=2"}})
	require.Zero(t, run.ExitCode, run.Output)
	assertUpgraded(t, l)
	assertPreparedBeforeRemoved(t, l, 2)

	starts = l.TaskStarts()
	again := upgrade(t, ctx, l, playtest.Options{})
	require.Zero(t, again.ExitCode, again.Output)
	assert.Empty(t, changedTasks(again), "a rerun after completion changes nothing")
	assert.Equal(t, starts, l.TaskStarts(), "a rerun after completion starts no KSC task")
}

// startSiteLab starts a 2x2 lab in a site's profile: Windows and Linux
// Light Agents of 12.x versions under keys and a Protection Server key that
// are not the lab's defaults (KESW-<suffix>, KESL-<suffix>,
// KSVLA-PS-<suffix>), so nothing passes on a default.
func startSiteLab(t *testing.T, suffix, windowsOS, linuxOS string) *sim.Lab {
	t.Helper()
	products := []sim.AgentProduct{
		{Key: "KESW-" + suffix, DisplayName: "Kaspersky Endpoint Security for Windows", OS: windowsOS},
		{Key: "KESL-" + suffix, DisplayName: "Kaspersky Endpoint Security for Linux", OS: linuxOS},
	}
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 2, PSKey: "KSVLA-PS-" + suffix, AgentProducts: products,
		OldAgentVersion: "12.5.0.100", NewAgentVersion: "12.6.0.200"})
	require.Equal(t, []string{"KESW-" + suffix, "KESL-" + suffix}, l.Vars(l.Dir()).LAProductKeys)
	return l
}
