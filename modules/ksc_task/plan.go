package ksctask

import "github.com/ksvla/lightagent/internal/ksc"

// Summary states of a task, from its statistics.
const (
	taskRunning   = "running"
	taskPaused    = "paused"
	taskCompleted = "completed"
	taskFailed    = "failed"
	taskPending   = "pending"   // not yet distributed to its targets
	taskScheduled = "scheduled" // waiting for its schedule: never run, or not since the last reset
	taskUnknown   = "unknown"   // no counter set
)

// Counts are the task's targets per state (Tasks.GetTaskStatistics).
type Counts struct {
	NotDistributed int `json:"not_distributed"`
	Running        int `json:"running"`
	Completed      int `json:"completed"`
	Warning        int `json:"warning"`
	Failed         int `json:"failed"`
	Scheduled      int `json:"scheduled"`
	Paused         int `json:"paused"`
}

// Task is what the module returns about the task.
type Task struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	State   string `json:"state"`
	Percent int    `json:"percent"`
	Counts  Counts `json:"counts"`
	// Error is the failure text the server reported, if any.
	Error string `json:"error,omitempty"`
	// FailedTargets are the devices the task failed on (at most
	// maxFailedTargets), when the server lists them.
	FailedTargets []FailedTarget `json:"failed_targets,omitempty"`
}

// FailedTarget is one device a task failed on.
type FailedTarget struct {
	Name     string `json:"name"`     // display name (hostdn)
	Hostname string `json:"hostname"` // KSC's host id (KLHST_WKS_HOSTNAME)
	Error    string `json:"error"`    // state_descr
}

func taskView(id, name string, s ksc.TaskState) Task {
	return Task{ID: id, Name: name, State: summarize(s), Percent: s.Percent, Counts: Counts{
		NotDistributed: s.NotDistributed, Running: s.Running, Completed: s.Completed, Warning: s.Warning,
		Failed: s.Failed, Scheduled: s.Scheduled, Paused: s.Paused,
	}}
}

// summarize names the state of the task as a whole. Done with failures is
// failed even when other targets completed: the playbook must notice.
func summarize(s ksc.TaskState) string {
	switch {
	case s.Running > 0:
		return taskRunning
	case s.Paused > 0:
		return taskPaused
	case s.Done() && s.Failed > 0:
		return taskFailed
	case s.Done():
		return taskCompleted
	case s.NotDistributed > 0:
		return taskPending
	case s.Scheduled > 0:
		return taskScheduled
	}
	return taskUnknown
}

// completedEverywhere reports whether the last run finished on every
// target without failure: the state rerun=false leaves alone.
func completedEverywhere(s ksc.TaskState) bool {
	return s.Done() && s.Failed == 0 && s.Scheduled == 0
}

// observed is what Observe read.
type observed struct {
	ID, Name string
	Stats    ksc.TaskState
}

// Plan is what the module will do to the task.
type Plan struct {
	Start bool // call RunTask
	Wait  bool // wait until the task is done
	// PrevDone says the previous run had finished, so its statistics may
	// still show for a moment after the start (see trustDoneAfter).
	PrevDone bool
	// Before and After are the task's state for the diff.
	Before, After string
}

// Empty reports whether nothing is to be done.
func (p Plan) Empty() bool { return !p.Start && !p.Wait }

// Diff returns {state} before and after.
func (p Plan) Diff() (before, after any) {
	return map[string]any{"state": p.Before}, map[string]any{"state": p.After}
}

// outcome is the plan the runtime carries from Plan to Apply, and the task
// as the run left it: the one place the result's values come from.
type outcome struct {
	Plan
	Task Task
}

// Report returns the task.
func (o *outcome) Report() map[string]any { return map[string]any{"task": o.Task} }

// plan decides from the observed statistics. It makes no I/O.
func plan(o Options, obs observed) Plan {
	cur := summarize(obs.Stats)
	p := Plan{Before: cur, After: cur, PrevDone: obs.Stats.Done()}
	busy := obs.Stats.Running > 0 || obs.Stats.Paused > 0
	switch {
	case completedEverywhere(obs.Stats) && !o.Rerun:
		return p
	case busy && o.State == StateStarted:
		return p // already started; starting again would be a no-op or a second run
	case busy:
		// Running already: wait for that run rather than start another.
		p.Wait = true
	default:
		p.Start = true
		p.Wait = o.State == StateCompleted
	}
	if o.State == StateCompleted {
		p.After = taskCompleted
	} else {
		p.After = taskRunning
	}
	return p
}
