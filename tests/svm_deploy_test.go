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

// svm_deploy through the real ansible-playbook on a 4-host lab: --check
// --diff predicts a deployment per host and creates nothing; the run
// deploys one marked, powered-on SVM per host, whose first-boot command
// ran; the rerun changes nothing.
func TestSVMDeployPlaybook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 4, VMsPerHost: 1})
	s := labtest.VSphere(t, l)
	v := l.Vars(l.Dir())
	require.Len(t, v.ESXiHosts, 4)
	opts := func(check bool) playtest.Options {
		return playtest.Options{Playbook: "tests/playbooks/svm_deploy.yml", Check: check, Diff: check,
			ExtraVars: map[string]any{"lab_vars": filepath.Join(l.Dir(), "vars.yml")}}
	}
	const task = "Deploy the new SVM"
	newSVMs := func(t *testing.T) map[string]vsphere.VM {
		t.Helper()
		list, err := s.Inventory(ctx, vsphere.Scope{})
		require.NoError(t, err)
		out := map[string]vsphere.VM{}
		for _, vm := range list {
			for _, h := range v.ESXiHosts {
				if vm.Name == v.SVMs[h] {
					out[h] = vm
				}
			}
		}
		return out
	}
	items := func(t *testing.T, run *playtest.Run) []playtest.TaskResult {
		t.Helper()
		var out []playtest.TaskResult
		for _, r := range run.Task(task) {
			if r.Status == "item_ok" || r.Status == "item_failed" {
				out = append(out, r)
			}
		}
		require.Len(t, out, 4, run.Output)
		return out
	}

	check, err := playtest.Playbook(ctx, opts(true))
	require.NoError(t, err)
	require.Equal(t, 0, check.ExitCode, check.Output)
	assert.Equal(t, 1, check.Stats["localhost"].Changed, check.Output)
	for _, it := range items(t, check) {
		assert.True(t, it.Changed(), it.Msg())
		assert.Equal(t, []any{"import", "set marks", "set first boot", "pin to host", "power on", "wait for IP"}, it.Result["plan"])
	}
	assert.Contains(t, check.Output, `"power_state": "poweredOn"`, "--diff shows the SVM to be")
	assert.Contains(t, check.Output, `"timezone Europe/Berlin"`, "--diff shows the first-boot commands")
	assert.Empty(t, newSVMs(t), "--check creates nothing")

	first, err := playtest.Playbook(ctx, opts(false))
	require.NoError(t, err)
	require.Equal(t, 0, first.ExitCode, first.Output)
	assert.Equal(t, 1, first.Stats["localhost"].Changed, first.Output)
	assert.Zero(t, first.Stats["localhost"].Failures, first.Output)
	for _, it := range items(t, first) {
		assert.True(t, it.Changed(), it.Msg())
		up, _ := it.Result["upload"].(map[string]any)
		assert.Positive(t, up["bytes"], "the upload is reported")
	}
	svms := newSVMs(t)
	require.Len(t, svms, 4)
	for _, h := range v.ESXiHosts {
		vm := svms[h]
		assert.Equal(t, h, vm.Host, "%s is pinned to its host", vm.Name)
		assert.Equal(t, "poweredOn", vm.PowerState)
		assert.NotEmpty(t, vm.IP)
		assert.Equal(t, v.NewVersion, vm.Marks[vsphere.MarkVersion])
		require.NotNil(t, l.SVM(vm.Name))
		assert.Equal(t, "Europe/Berlin", l.SVM(vm.Name).State().Timezone, "the first-boot command ran on %s", vm.Name)
	}

	rerun, err := playtest.Playbook(ctx, opts(false))
	require.NoError(t, err)
	require.Equal(t, 0, rerun.ExitCode, rerun.Output)
	assert.Equal(t, 0, rerun.Stats["localhost"].Changed, rerun.Output)
	for _, it := range items(t, rerun) {
		assert.False(t, it.Changed(), it.Msg())
	}
	after := newSVMs(t)
	for h, vm := range svms {
		assert.Equal(t, vm.Moid, after[h].Moid, "the rerun keeps the SVM on %s", h)
	}
}
