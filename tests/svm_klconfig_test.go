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
	"github.com/ksvla/lightagent/internal/sim/svm"
)

// svm_klconfig through the real ansible-playbook against a 2-host lab: --check --diff predicts
// changes and changes nothing, the first run changes, the rerun (at -vvv) changes nothing and
// never shows the password; option errors carry AnsibleModule's messages in every run.
func TestSVMKlconfigPlaybook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	lab, err := sim.Start(ctx, sim.Config{
		Hosts: 2, VMsPerHost: 1, SSHPort: svm.EphemeralPort, Dir: filepath.Join(dir, "lab"), ImageBytes: 4096,
		HeartbeatInterval: 50 * time.Millisecond, NetworkRestartDelay: 50 * time.Millisecond, Logf: t.Logf,
	})
	require.NoError(t, err)
	t.Cleanup(lab.Close)
	labDir := filepath.Join(dir, "files")
	require.NoError(t, lab.WriteFiles(labDir))
	vars := lab.Vars(labDir)

	var svms []*svm.SVM
	for _, h := range lab.Status().Hosts {
		for _, s := range h.SVMs {
			if s.SSH != "" {
				svms = append(svms, lab.SVM(s.Name))
			}
		}
	}
	require.Len(t, svms, 2, "the lab seeds one powered-on SVM per host")
	states := func() []svm.State {
		var out []svm.State
		for _, s := range svms {
			st := s.State()
			st.ResultsLog = nil // every read appends to it
			out = append(out, st)
		}
		return out
	}

	opts := func(check bool, verbosity int) playtest.Options {
		return playtest.Options{
			Playbook:  "tests/playbooks/svm_klconfig.yml",
			ExtraVars: map[string]any{"lab_vars": filepath.Join(labDir, "vars.yml"), "record_path": filepath.Join(dir, "records")},
			Check:     check, Diff: check, Verbosity: verbosity,
		}
	}
	const configure = "Configure DNS, time zone and the Administration Server"
	validation := []string{"Unknown option", "Wrong type", "Missing host"}

	before := states()
	check, err := playtest.Playbook(ctx, opts(true, 0))
	require.NoError(t, err)
	require.Equal(t, 0, check.ExitCode, check.Output)
	assert.Equal(t, before, states(), "--check changed an SVM")
	assert.Equal(t, 1, check.Stats["localhost"].Changed, check.Output)
	for _, r := range items(check, configure) {
		assert.True(t, r.Changed(), "check mode predicts a change on %v", r.Result["host"])
	}

	first, err := playtest.Playbook(ctx, opts(false, 0))
	require.NoError(t, err)
	require.Equal(t, 0, first.ExitCode, first.Output)
	assert.Equal(t, 1, first.Stats["localhost"].Changed, first.Output)
	for _, st := range states() {
		assert.Equal(t, []string{vars.KSCNagentAddress, "192.0.2.53"}, st.Nameservers)
		assert.Equal(t, []string{"lab.local"}, st.Search)
		assert.Equal(t, "Europe/Berlin", st.Timezone)
		assert.Equal(t, svm.Nagent{Installed: true, Configured: true, Address: vars.KSCNagentAddress,
			SSLPort: vars.KSCNagentSSLPort, Port: vars.KSCNagentPort}, st.Nagent)
	}

	rerun, err := playtest.Playbook(ctx, opts(false, 3))
	require.NoError(t, err)
	require.Equal(t, 0, rerun.ExitCode, rerun.Output)
	assert.Equal(t, 0, rerun.Stats["localhost"].Changed, rerun.Output)
	assert.NotContains(t, rerun.Output, vars.SVMKlconfigPassword)
	assert.Contains(t, rerun.Output, "svm_klconfig", "-vvv output is there")

	for _, run := range []*playtest.Run{check, first, rerun} {
		assert.Equal(t, len(validation), run.Stats["localhost"].Ignored, "option errors fail in every run, --check too")
		for _, name := range validation {
			res := run.Task(name)
			require.Len(t, res, 1, "task %q in %v", name, run.TaskNames())
			assert.Equal(t, "ignored", res[0].Status)
			assert.NotContains(t, res[0].Result, "klconfig")
		}
		got := items(run, configure)
		require.Len(t, got, 2)
		for _, r := range got {
			klconfig, _ := r.Result["klconfig"].(map[string]any)
			assert.Equal(t, vars.OldVersion, klconfig["version"])
		}
	}
}

// items returns the per-item results of a loop task.
func items(run *playtest.Run, task string) []playtest.TaskResult {
	var out []playtest.TaskResult
	for _, r := range run.Task(task) {
		if r.Status == "item_ok" || r.Status == "item_failed" {
			out = append(out, r)
		}
	}
	return out
}
