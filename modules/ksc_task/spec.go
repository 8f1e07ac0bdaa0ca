package ksctask

import (
	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/modules/conn"
)

// States the module can bring a task to.
const (
	StateCompleted = "completed"
	StateStarted   = "started"
)

// Options are ksc_task's decoded options.
type Options struct {
	conn.KSCOptions
	ansible.Deadline
	Name              string `json:"name"`
	State             string `json:"state"`
	Rerun             bool   `json:"rerun"`
	WaitTimeout       int    `json:"wait_timeout"`
	PollInterval      int    `json:"poll_interval"`
	FailOnTaskFailure bool   `json:"fail_on_task_failure"`
	WarnOnTaskFailure bool   `json:"warn_on_task_failure"`
}

func spec() ansible.Spec {
	return conn.KSCSpec().Merge(ansible.Spec{Options: []ansible.Option{
		{Name: "name", Type: ansible.TypeStr, Required: true,
			Description: []string{"The display name of an existing KSC task, as the console shows it (e.g. V(Update Light Agent)).",
				"It must name exactly one task: a missing name or a name several tasks share is an error."}},
		{Name: "state", Type: ansible.TypeStr, Default: StateCompleted, Choices: []any{StateCompleted, StateStarted},
			Description: []string{"V(completed) starts the task unless its last run already completed on every target, then waits until it is done.",
				"V(started) starts the task (unless it is running, or completed and O(rerun=false)) and returns without waiting."}},
		{Name: "rerun", Type: ansible.TypeBool, Default: false,
			Description: []string{"Start the task even when its statistics show it completed on every target.",
				"With V(false) (the default) the module is idempotent: a completed task is not started again and C(changed) is false."}},
		{Name: "wait_timeout", Type: ansible.TypeInt, Default: 1800, Range: ansible.SecondsRange,
			Description: []string{"Seconds to wait for the task to finish with O(state=completed).",
				"The module's O(timeout) bounds the whole run, this wait included: keep it above O(wait_timeout)."}},
		{Name: "poll_interval", Type: ansible.TypeInt, Default: 5, Range: ansible.Between(0, 3600),
			Description: []string{"Seconds between two reads of the task's statistics while waiting; V(0) polls as fast as is reasonable (every 20 ms)."}},
		{Name: "fail_on_task_failure", Type: ansible.TypeBool, Default: true,
			Description: []string{"Fail when the task fails on any target. With V(false) a failed task is a warning (see O(warn_on_task_failure)) and the module succeeds."}},
		{Name: "warn_on_task_failure", Type: ansible.TypeBool, Default: true,
			Description: []string{"With O(fail_on_task_failure=false): warn when the task failed on targets.",
				"Set V(false) only when the playbook judges the failure itself, e.g. a task whose targets span hypervisors not upgraded yet, followed by a check of the hypervisors in hand: the result still says V(failed) in RV(task) and in C(msg)."}},
		ansible.TimeoutOption(3600),
	}})
}
