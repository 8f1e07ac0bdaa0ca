package tests

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// callbackFailure is how Ansible reports a callback that could not print
// a result (a diff whose before/after is a list, for one).
const callbackFailure = "Failure using method"

// Every module's diff prints through the default callback, and through
// ansible-runner's event stream as AWX reads it ("Show changes"): no
// callback failure, the diff's text in the output.
func TestDiffsPrint(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	if _, err := exec.LookPath("ansible-runner"); err != nil {
		t.Fatalf("ansible-runner is missing: run tests/deps.sh: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: 1})
	leftover := func(name string) map[string]any {
		l.KSC().UpsertHost(kscsim.Host{DisplayName: name, IP: "10.9.9.8"})
		return map[string]any{"lab_vars": filepath.Join(l.Dir(), "vars.yml"), "leftover": name}
	}

	run, err := playtest.Playbook(ctx, playtest.Options{Playbook: "tests/playbooks/diffs.yml", Diff: true,
		ExtraVars: leftover("svm-gone-1")})
	require.NoError(t, err)
	require.Zero(t, run.ExitCode, run.Output)
	assert.NotContains(t, run.Output, callbackFailure)
	assert.Contains(t, run.Output, "+++ after\n")
	assert.Contains(t, run.Output, "-KSC record svm-gone-1 (id ", "the purge's diff is printed")
	assert.Empty(t, l.KSC().FindByName("svm-gone-1"))

	lib, err := playtest.Modules()
	require.NoError(t, err)
	pdd := t.TempDir()
	for _, d := range []string{"project", "inventory", "env"} {
		require.NoError(t, os.MkdirAll(filepath.Join(pdd, d), 0o700))
	}
	pb, err := os.ReadFile(filepath.Join(playtest.Root(), "tests", "playbooks", "diffs.yml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(pdd, "project", "diffs.yml"), pb, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(pdd, "inventory", "hosts"),
		[]byte("localhost ansible_connection=local ansible_python_interpreter=\"{{ ansible_playbook_python }}\"\n"), 0o600))
	for name, val := range map[string]any{
		"extravars": leftover("svm-gone-2"),
		"envvars": map[string]string{"ANSIBLE_LIBRARY": lib, "ANSIBLE_COLLECTIONS_PATH": filepath.Join(lib, "collections"),
			"ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "false"},
		"cmdline": "--diff",
	} {
		b, err := json.Marshal(val)
		require.NoError(t, err)
		if s, ok := val.(string); ok {
			b = []byte(s)
		}
		require.NoError(t, os.WriteFile(filepath.Join(pdd, "env", name), b, 0o600))
	}
	const ident = "diffs"
	out, err := exec.CommandContext(ctx, "ansible-runner", "run", pdd, "-p", "diffs.yml", "--ident", ident).CombinedOutput()
	require.NoError(t, err, string(out))
	art := filepath.Join(pdd, "artifacts", ident)
	events := readJobEvents(t, art)
	var purged []jobEvent
	var stdout strings.Builder
	for _, e := range events {
		assert.NotEqual(t, "runner_on_failed", e.Event, "%s: %v", e.EventData.Task, e.EventData.Res["msg"])
		stdout.WriteString(e.Stdout + "\n")
		if e.Event == "runner_on_ok" && e.EventData.Task == "Purge the leftover record" {
			purged = append(purged, e)
		}
	}
	assert.NotContains(t, stdout.String(), callbackFailure)
	require.Len(t, purged, 1)
	diff, _ := purged[0].EventData.Res["diff"].(map[string]any)
	assert.Contains(t, diff["before"], "KSC record svm-gone-2 (id ")
	assert.Contains(t, stdout.String(), "-KSC record svm-gone-2 (id ", "the events carry the printed diff")
	assert.Contains(t, stdout.String(), "Plan the Light Agent update task")
	assert.Empty(t, l.KSC().FindByName("svm-gone-2"))
}
