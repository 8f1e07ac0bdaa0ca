package ksctask

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/ksc"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
)

const (
	kscUser = "automation"
	kscPass = "Ksc-task-S3cret!"
)

func startKSC(t *testing.T) *kscsim.Server {
	t.Helper()
	s, err := kscsim.Start(kscsim.Config{Username: kscUser, Password: kscPass, CertDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func args(s *kscsim.Server, extra map[string]any) map[string]any {
	a := map[string]any{
		"ksc_url": s.URL(), "ksc_username": kscUser, "ksc_password": kscPass, "ksc_ca_file": s.CertFile(),
		"poll_interval": 0,
	}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

func run(t *testing.T, s *kscsim.Server, extra map[string]any, mode ansibletest.Mode) ansible.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mode.Diff = true
	res := ansibletest.Run(t, ctx, "ksc_task", New(), args(s, extra), mode)
	raw, err := json.Marshal(res)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), kscPass, "the password must never appear in the result")
	return res
}

func quick(ctx context.Context, progress func(int)) error {
	progress(50)
	return nil
}

func TestStartAndWait(t *testing.T) {
	s := startKSC(t)
	s.AddTask("Update Light Agent", quick)
	name := map[string]any{"name": "Update Light Agent"}

	check := run(t, s, name, ansibletest.Mode{Check: true})
	require.False(t, check.Failed(), check.Msg())
	assert.True(t, check.Changed())
	assert.Equal(t, "KSC task Update Light Agent would be started (it is scheduled)", check.Msg())
	assert.Equal(t, map[string]any{"before": map[string]any{"state": "scheduled"}, "after": map[string]any{"state": "completed"}}, check["diff"])
	assert.Zero(t, s.Calls()["Tasks.RunTask"], "check mode must not start the task")

	logins, logouts := s.Calls()["Session.StartSession"], s.Calls()["Session.EndSession"]
	first := run(t, s, name, ansibletest.Mode{})
	require.False(t, first.Failed(), first.Msg())
	assert.True(t, first.Changed())
	assert.Equal(t, logins+1, s.Calls()["Session.StartSession"], "Observe and Apply share one session")
	assert.Equal(t, logouts+1, s.Calls()["Session.EndSession"], "the session ends with the run")
	assert.Equal(t, "KSC task Update Light Agent completed on 1 targets", first.Msg())
	assert.Equal(t, "completed", ansibletest.Get(first, "task", "state"))
	assert.EqualValues(t, 100, ansibletest.Get(first, "task", "percent"))
	assert.EqualValues(t, 1, ansibletest.Get(first, "task", "counts", "completed"))
	assert.Equal(t, 1, s.Calls()["Tasks.RunTask"])

	second := run(t, s, name, ansibletest.Mode{})
	require.False(t, second.Failed(), second.Msg())
	assert.False(t, second.Changed())
	assert.Equal(t, "KSC task Update Light Agent is completed; not started", second.Msg())
	assert.Nil(t, second["diff"])
	assert.Equal(t, 1, s.Calls()["Tasks.RunTask"], "a completed task is not started again")

	// rerun: check mode predicts, apply starts it again, every time.
	rcheck := run(t, s, map[string]any{"name": "Update Light Agent", "rerun": true}, ansibletest.Mode{Check: true})
	assert.True(t, rcheck.Changed())
	assert.Equal(t, 1, s.Calls()["Tasks.RunTask"])
	for i := range 2 {
		again := run(t, s, map[string]any{"name": "Update Light Agent", "rerun": true}, ansibletest.Mode{})
		require.False(t, again.Failed(), again.Msg())
		assert.True(t, again.Changed())
		assert.Equal(t, "completed", ansibletest.Get(again, "task", "state"))
		assert.Equal(t, 2+i, s.Calls()["Tasks.RunTask"])
	}
}

func TestNotFoundAndAmbiguous(t *testing.T) {
	s := startKSC(t)
	s.AddTask("Update Light Agent", quick)
	s.AddTask("Add key KSVLA", quick)
	s.AddTask("Twin", quick)
	s.AddTask("Twin", quick)

	for _, tc := range []struct {
		name, want string
	}{
		{"Update Light Agents", "KSC task Update Light Agents not found; existing tasks: Add key KSVLA, Twin, Twin, Update Light Agent"},
		{"Twin", `KSC task Twin: find task "Twin": 2 tasks have that name (ids [103 104])`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, check := range []bool{true, false} {
				res := run(t, s, map[string]any{"name": tc.name}, ansibletest.Mode{Check: check})
				assert.True(t, res.Failed())
				assert.Equal(t, tc.want, res.Msg())
			}
		})
	}
	assert.Zero(t, s.Calls()["Tasks.RunTask"])

	empty := startKSC(t)
	res := run(t, empty, map[string]any{"name": "Anything"}, ansibletest.Mode{})
	assert.Equal(t, "KSC task Anything not found; the server has no tasks", res.Msg())
}

func TestFailingTask(t *testing.T) {
	s := startKSC(t)
	s.AddTask("Add key KSVLA", func(context.Context, func(int)) error { return errors.New("licence key is not valid") })

	res := run(t, s, map[string]any{"name": "Add key KSVLA"}, ansibletest.Mode{})
	assert.True(t, res.Failed())
	assert.True(t, res.Changed(), "the task was started")
	assert.Equal(t, "KSC task Add key KSVLA failed on 1 of 1 targets: licence key is not valid", res.Msg())
	assert.Equal(t, "failed", ansibletest.Get(res, "task", "state"))
	assert.Equal(t, "licence key is not valid", ansibletest.Get(res, "task", "error"))

	// A failed last run is not "completed": the next run starts it again,
	// and with fail_on_task_failure false the failure is a warning.
	soft := run(t, s, map[string]any{"name": "Add key KSVLA", "fail_on_task_failure": false}, ansibletest.Mode{Diff: true})
	require.False(t, soft.Failed(), soft.Msg())
	assert.True(t, soft.Changed())
	assert.Equal(t, map[string]any{"before": map[string]any{"state": "failed"}, "after": map[string]any{"state": "failed"}}, soft["diff"],
		"the diff tells what the run came to, not the planned completed")
	assert.Equal(t, []any{"KSC task Add key KSVLA failed on 1 of 1 targets: licence key is not valid"}, soft["warnings"])
	assert.Equal(t, 2, s.Calls()["Tasks.RunTask"])

	// The playbook judges it itself: no warning, the result still says so.
	quiet := run(t, s, map[string]any{"name": "Add key KSVLA", "fail_on_task_failure": false, "warn_on_task_failure": false}, ansibletest.Mode{})
	require.False(t, quiet.Failed(), quiet.Msg())
	assert.Nil(t, quiet["warnings"])
	assert.Equal(t, "KSC task Add key KSVLA failed on 1 of 1 targets: licence key is not valid", quiet.Msg())
	assert.Equal(t, "failed", ansibletest.Get(quiet, "task", "state"))
}

func TestStartedAndRunning(t *testing.T) {
	s := startKSC(t)
	release := make(chan struct{})
	s.AddTask("Long", func(ctx context.Context, progress func(int)) error {
		progress(30)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	started := run(t, s, map[string]any{"name": "Long", "state": "started"}, ansibletest.Mode{})
	require.False(t, started.Failed(), started.Msg())
	assert.True(t, started.Changed())
	assert.Equal(t, "KSC task Long started", started.Msg())
	assert.Equal(t, "running", ansibletest.Get(started, "task", "state"))
	assert.Equal(t, map[string]any{"before": map[string]any{"state": "scheduled"}, "after": map[string]any{"state": "running"}}, started["diff"])

	again := run(t, s, map[string]any{"name": "Long", "state": "started"}, ansibletest.Mode{})
	require.False(t, again.Failed(), again.Msg())
	assert.False(t, again.Changed(), "a running task is started already")

	timedOut := run(t, s, map[string]any{"name": "Long", "wait_timeout": 1}, ansibletest.Mode{})
	assert.True(t, timedOut.Failed())
	assert.Equal(t, "KSC task Long did not finish within 1 s (it is running, 30%): context deadline exceeded", timedOut.Msg())

	// state=completed on a running task waits for that run, without a second start.
	time.AfterFunc(100*time.Millisecond, func() { close(release) })
	done := run(t, s, map[string]any{"name": "Long"}, ansibletest.Mode{})
	require.False(t, done.Failed(), done.Msg())
	assert.True(t, done.Changed())
	assert.Equal(t, "completed", ansibletest.Get(done, "task", "state"))
	assert.Equal(t, 1, s.Calls()["Tasks.RunTask"])
}

func TestConnectionOptionMissing(t *testing.T) {
	ctx := context.Background()
	res := ansibletest.Run(t, ctx, "ksc_task", New(), map[string]any{"name": "x", "ksc_username": "u", "ksc_password": kscPass}, ansibletest.Mode{})
	assert.True(t, res.Failed())
	assert.Equal(t, "ksc_url is required: set the ksc_url option or export KSC_URL=...", res.Msg())
}

func TestPlan(t *testing.T) {
	done := kscsimState(4)
	for _, tc := range []struct {
		name string
		o    Options
		obs  observed
		want Plan
	}{
		{"never run", Options{State: StateCompleted}, observed{Stats: kscsimState(32)}, Plan{Start: true, Wait: true, Before: "scheduled", After: "completed"}},
		{"completed", Options{State: StateCompleted}, observed{Stats: done}, Plan{Before: "completed", After: "completed", PrevDone: true}},
		{"rerun", Options{State: StateCompleted, Rerun: true}, observed{Stats: done}, Plan{Start: true, Wait: true, Before: "completed", After: "completed", PrevDone: true}},
		{"failed", Options{State: StateStarted}, observed{Stats: kscsimState(16)}, Plan{Start: true, Before: "failed", After: "running", PrevDone: true}},
		{"running, wait", Options{State: StateCompleted}, observed{Stats: kscsimState(2)}, Plan{Wait: true, Before: "running", After: "completed"}},
		{"running, started", Options{State: StateStarted, Rerun: true}, observed{Stats: kscsimState(2)}, Plan{Before: "running", After: "running"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, plan(tc.o, tc.obs))
		})
	}
}

// kscsimState is the statistics of a one-target task in the given state
// (the GetTaskStatistics key: 2 running, 4 completed, 16 failed, 32 scheduled).
func kscsimState(key int) ksc.TaskState {
	var s ksc.TaskState
	switch key {
	case 2:
		s.Running = 1
	case 4:
		s.Completed, s.Percent = 1, 100
	case 16:
		s.Failed = 1
	case 32:
		s.Scheduled = 1
	}
	return s
}
