package ksctask

import "github.com/ksvla/lightagent/internal/ansible"

// Doc documents the module.
func (*Module) Doc() ansible.Doc {
	return ansible.Doc{
		ShortDescription: "Start an existing Kaspersky Security Center task and wait for its result",
		Description: []string{
			"Finds one task of the Kaspersky Security Center (KSC) Administration Server by its display name, starts it and, with O(state=completed), waits until it has finished on every target.",
			"Used by the upgrade for the Protection Server's activation and database-update tasks and for the Light Agent update task.",
			"Idempotent: a task whose statistics show its last run completed on every target is not started again (unless O(rerun=true)); a task that is running already is waited for, not started twice.",
		},
		Notes: []string{
			"The task must exist: create it in the KSC console (or by policy) first. A name no task has fails and lists the existing names when there are few; a name several tasks share fails rather than picking one.",
			"When a task fails on targets, the module reads which ones from KSC (the Tasks host status iterator) and names them in C(msg) and in the warning: display name, KSC host id and KSC's state description, at most 10, then how many more; RV(task.failed_targets) lists up to 100.",
			"A KSC that cannot list a task's targets (an older server) gives the number of failed targets and, when the server reports one, the task's failure text; the details are then in the task's results in the KSC console.",
			"O(timeout) bounds the whole run, O(wait_timeout) included: a run that hits it fails naming O(timeout), and RV(task) still shows where the task was.",
			"In check mode the task is found and its statistics read, but it is never started.",
		},
		CheckMode: "full",
		DiffMode:  "full",
		Examples: `
- name: Update the Protection Server databases
  ksvla.lightagent.ksc_task:
    ksc_url: https://ksc.example.com:13299
    ksc_username: automation
    ksc_password: "{{ ksc_password }}"
    ksc_ca_file: files/klserver.cer
    name: Download updates to the repositories of the Administration Server
    wait_timeout: 3600
  delegate_to: localhost

- name: Update the Light Agents, even if the task ran before
  ksvla.lightagent.ksc_task:
    name: Update Light Agent
    rerun: true

- name: Start the activation task and move on
  ksvla.lightagent.ksc_task:
    name: Add key KSVLA
    state: started

- name: Run a task whose failure must not stop the play
  ksvla.lightagent.ksc_task:
    name: Update Light Agent
    fail_on_task_failure: false
  register: update

- name: Show what happened
  ansible.builtin.debug:
    msg: "{{ update.task.state }} on {{ update.task.counts.completed }} targets"
`,
		Return: map[string]ansible.ReturnValue{
			"task": {Description: []string{"The task and its statistics after the module's work (before it, when nothing was done or in check mode)."},
				Returned: "when the task was found", Type: "dict",
				Contains: map[string]ansible.ReturnValue{
					"id":      {Description: []string{"The task's id (C(TASK_UNIQUE_ID))."}, Returned: "always", Type: "str", Sample: "101"},
					"name":    {Description: []string{"The task's display name."}, Returned: "always", Type: "str", Sample: "Update Light Agent"},
					"state":   {Description: []string{"V(running), V(paused), V(completed), V(failed) (done, with at least one failed target), V(pending), V(scheduled) or V(unknown)."}, Returned: "always", Type: "str", Sample: "completed"},
					"percent": {Description: []string{"Completion in percent."}, Returned: "always", Type: "int", Sample: 100},
					"counts": {Description: []string{"Targets per state: C(not_distributed), C(running), C(completed), C(warning), C(failed), C(scheduled), C(paused)."},
						Returned: "always", Type: "dict", Sample: map[string]any{"completed": 12, "failed": 0, "running": 0}},
					"error": {Description: []string{"The failure text the server reported for a failed task."}, Returned: "when the task failed and the server gave a text", Type: "str"},
					"failed_targets": {Description: []string{"The devices the task failed on, as KSC lists them (at most 100)."},
						Returned: "when the task failed on targets and the server lists them", Type: "list",
						Sample: []any{map[string]any{"name": "vm-esxi-02-001", "hostname": "6a1f0c2e-8d4b-4f51-9b7e-2c3d4e5f6a7b", "error": "Installation package not found"}},
						Contains: map[string]ansible.ReturnValue{
							"name":     {Description: []string{"The device's display name in KSC."}, Returned: "always", Type: "str"},
							"hostname": {Description: []string{"The device's KSC host id (C(KLHST_WKS_HOSTNAME))."}, Returned: "always", Type: "str"},
							"error":    {Description: []string{"KSC's description of the device's result (C(state_descr)); empty when KSC gives none."}, Returned: "always", Type: "str"},
						}},
				}},
			"msg": {Description: []string{"What was done, or why the task failed."}, Returned: "always", Type: "str",
				Sample: "KSC task Update Light Agent failed on 1 of 12 targets: vm-esxi-02-001 [6a1f0c2e-8d4b-4f51-9b7e-2c3d4e5f6a7b]: Installation package not found"},
		},
	}
}
