package ksc

import (
	"context"
	"fmt"
	"strconv"
)

// Task calls follow the vendor's KlAkOAPI sample "Enumerating tasks,
// querying task statistics and running task": ResetTasksIterator /
// GetNextTask / ReleaseTasksIterator to find a task by display name,
// RunTask to start it, GetTaskStatistics for its state.

// FindTask returns the id (TASK_UNIQUE_ID) of the one task whose display
// name is name. No task gives an error wrapping ErrNotFound; several with
// that name are an error, as picking one would be a guess.
func (c *Client) FindTask(ctx context.Context, name string) (string, error) {
	r, err := c.Call(ctx, "Tasks.ResetTasksIterator", map[string]any{
		"nGroupId": 0, "bGroupIdSignificant": false, // false: every group's tasks
		"strProductName": "", "strVersion": "", "strComponentName": "", "strInstanceId": "", "strTaskName": "",
		"bIncludeSupergroups": true,
	}, true)
	if err != nil {
		return "", fmt.Errorf("find task %q: %w", name, err)
	}
	it := r["strTaskIteratorId"].Str()
	defer func() {
		// Ignored: the ids are already read, and the server frees the
		// iterator with the session anyway.
		_, _ = c.Call(context.WithoutCancel(ctx), "Tasks.ReleaseTasksIterator", map[string]any{"strTaskIteratorId": it}, false)
	}()
	var ids []string
	for i := 0; i < 100000; i++ { // bound: a misbehaving server must not loop us forever
		// Not a read for retry purposes: GetNextTask advances the iterator.
		r, err := c.Call(ctx, "Tasks.GetNextTask", map[string]any{"strTaskIteratorId": it}, false)
		if err != nil {
			return "", fmt.Errorf("find task %q: %w", name, err)
		}
		d := r["pTaskData"].Params()
		if len(d) == 0 {
			break
		}
		dn := d["TASK_INFO_PARAMS"].Get("DisplayName").Str()
		if dn == "" {
			dn = d.Str("DisplayName")
		}
		if dn == name {
			id := d.Str("TASK_UNIQUE_ID")
			if id == "" {
				if n, ok := d.Int("TASK_UNIQUE_ID"); ok {
					id = strconv.FormatInt(n, 10)
				}
			}
			ids = append(ids, id)
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("find task %q: %w", name, ErrNotFound)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("find task %q: %d tasks have that name (ids %v)", name, len(ids), ids)
}

// RunTask starts a task now.
func (c *Client) RunTask(ctx context.Context, taskID string) error {
	if _, err := c.Call(ctx, "Tasks.RunTask", map[string]any{"strTask": taskID}, false); err != nil {
		return fmt.Errorf("run task %s: %w", taskID, err)
	}
	return nil
}

// TaskState is a task's statistics: host counts per state.
type TaskState struct {
	NotDistributed, Running, Completed, Warning, Failed, Scheduled, Paused int
	Percent                                                                int // GNRL_COMPLETED_PERCENT
}

// Done reports whether no host is still running or waiting for the task.
func (s TaskState) Done() bool {
	return s.Running == 0 && s.NotDistributed == 0 && s.Paused == 0 && s.Completed+s.Warning+s.Failed > 0
}

// TaskState reads Tasks.GetTaskStatistics.
func (c *Client) TaskState(ctx context.Context, taskID string) (TaskState, error) {
	r, err := c.Call(ctx, "Tasks.GetTaskStatistics", map[string]any{"strTask": taskID}, true)
	if err != nil {
		return TaskState{}, fmt.Errorf("get state of task %s: %w", taskID, err)
	}
	p := r.RetVal().Params()
	n := func(k string) int { v, _ := p.Int(k); return int(v) }
	return TaskState{
		NotDistributed: n("1"), Running: n("2"), Completed: n("4"), Warning: n("8"),
		Failed: n("16"), Scheduled: n("32"), Paused: n("64"), Percent: n("GNRL_COMPLETED_PERCENT"),
	}, nil
}
