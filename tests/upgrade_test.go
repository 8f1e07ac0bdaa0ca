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
			assert.Equal(t, v.NewAgentVersion, ver, "%s still has agents on %s", h.Name, ver)
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

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
