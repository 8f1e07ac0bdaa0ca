package ksctask

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
)

// fleetTask adds a task that runs on n VMs vm-01..vm-n and fails on those
// in fail (the work's own result; kscsim.Config.FailTasksOn is the other
// way). It returns the VMs' KSC host ids by name. The task reports no
// failure text of its own: the names can only come from the targets.
func fleetTask(s *kscsim.Server, name string, n int, fail map[string]string) map[string]string {
	ids := map[string]string{}
	var order []string
	for i := 1; i <= n; i++ {
		vm := fmt.Sprintf("vm-%02d", i)
		ids[vm] = s.UpsertHost(kscsim.Host{DisplayName: vm})
		order = append(order, ids[vm])
	}
	s.AddTargetTask(name, func(_ context.Context, r *kscsim.Run) error {
		r.SetTargets(order...)
		for vm, id := range ids {
			if text, ok := fail[vm]; ok {
				r.Done(id, errors.New(text))
			} else {
				r.Done(id, nil)
			}
		}
		return nil
	})
	return ids
}

func TestFailedTargetsNamed(t *testing.T) {
	s := startKSC(t)
	ids := fleetTask(s, "Update Light Agent", 5, map[string]string{"vm-02": "not enough disk space", "vm-04": "Installation package not found"})

	res := run(t, s, map[string]any{"name": "Update Light Agent", "fail_on_task_failure": false}, ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	want := "KSC task Update Light Agent failed on 2 of 5 targets: vm-02 [" + ids["vm-02"] + "]: not enough disk space; vm-04 [" +
		ids["vm-04"] + "]: Installation package not found"
	assert.Equal(t, []any{want}, res["warnings"], "the warning names exactly the failed targets")
	assert.Equal(t, want, res.Msg())
	assert.Equal(t, []any{
		map[string]any{"name": "vm-02", "hostname": ids["vm-02"], "error": "not enough disk space"},
		map[string]any{"name": "vm-04", "hostname": ids["vm-04"], "error": "Installation package not found"},
	}, ansibletest.Get(res, "task", "failed_targets"))
	assert.EqualValues(t, 3, ansibletest.Get(res, "task", "counts", "completed"))
	assert.Equal(t, s.Calls()["Tasks.ResetHostIteratorForTaskStatusEx"], s.Calls()["Tasks.ReleaseHostStatusIterator"])

	// fail_on_task_failure (the default): the failure names them too.
	hard := run(t, s, map[string]any{"name": "Update Light Agent"}, ansibletest.Mode{})
	assert.True(t, hard.Failed())
	assert.Equal(t, want, hard.Msg())
	assert.Len(t, ansibletest.Get(hard, "task", "failed_targets"), 2)
}

func TestFailedTargetsBounded(t *testing.T) {
	s := startKSC(t)
	fail := map[string]string{}
	for i := 1; i <= 14; i++ {
		fail[fmt.Sprintf("vm-%02d", i)] = "unreachable"
	}
	fleetTask(s, "Update Light Agent", 15, fail)
	res := run(t, s, map[string]any{"name": "Update Light Agent", "fail_on_task_failure": false}, ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.Regexp(t, `^KSC task Update Light Agent failed on 14 of 15 targets: vm-01 \[[^]]+\]: unreachable; (vm-\d\d \[[^]]+\]: unreachable; ){9}and 4 more$`, res.Msg())
	assert.Len(t, ansibletest.Get(res, "task", "failed_targets"), 14, "the result lists them all, up to its own bound")
}

// A KSC without the host status iterator: today's message, with the
// failure text when the server gives one.
func TestFailedTargetsOldKSC(t *testing.T) {
	s, err := kscsim.Start(kscsim.Config{Username: kscUser, Password: kscPass, CertDir: t.TempDir(),
		MissingMethods: []string{"Tasks.ResetHostIteratorForTaskStatusEx", "Tasks.GetNextHostStatus"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	fleetTask(s, "Update Light Agent", 3, map[string]string{"vm-02": "not enough disk space"})
	res := run(t, s, map[string]any{"name": "Update Light Agent", "fail_on_task_failure": false}, ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.Equal(t, "KSC task Update Light Agent failed on 1 of 3 targets", res.Msg())
	assert.Nil(t, ansibletest.Get(res, "task", "failed_targets"))

	// With the server's failure text, the message carries it, as before.
	vm := s.UpsertHost(kscsim.Host{DisplayName: "svm-01"})
	s.AddTargetTask("Add key KSVLA", func(_ context.Context, r *kscsim.Run) error {
		r.SetTargets(vm)
		return errors.New("licence key is not valid")
	})
	res = run(t, s, map[string]any{"name": "Add key KSVLA", "fail_on_task_failure": false}, ansibletest.Mode{})
	assert.Equal(t, "KSC task Add key KSVLA failed on 1 of 1 targets: licence key is not valid", res.Msg())
	assert.Equal(t, "licence key is not valid", ansibletest.Get(res, "task", "error"))
}

// The module's timeout bounds the wait, whatever wait_timeout says, and
// the runtime names it.
func TestTimeoutOption(t *testing.T) {
	s := startKSC(t)
	s.AddTask("Long", func(ctx context.Context, progress func(int)) error {
		progress(30)
		<-ctx.Done()
		return ctx.Err()
	})
	start := time.Now()
	res := run(t, s, map[string]any{"name": "Long", "wait_timeout": 600, "timeout": 1}, ansibletest.Mode{})
	assert.True(t, res.Failed())
	assert.Equal(t, "wait for KSC task Long (it is running, 30%): context deadline exceeded (the module ran out of time: option timeout is 1 s)", res.Msg())
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Equal(t, "running", ansibletest.Get(res, "task", "state"), "the result still says where the task is")
}

func TestNameTargets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ts    []FailedTarget
		total int
		want  string
	}{
		{"name, id and text", []FailedTarget{{Name: "vm-01", Hostname: "6a1f", Error: "disk full"}}, 1, "vm-01 [6a1f]: disk full"},
		{"no display name: the id", []FailedTarget{{Hostname: "6a1f", Error: "disk full"}}, 1, "6a1f: disk full"},
		{"id equal to the name, no text", []FailedTarget{{Name: "vm-01", Hostname: "vm-01"}}, 1, "vm-01"},
		{"more failed than listed", []FailedTarget{{Name: "vm-01"}, {Name: "vm-02"}}, 5, "vm-01; vm-02; and 3 more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, nameTargets(tc.ts, tc.total))
		})
	}
}
