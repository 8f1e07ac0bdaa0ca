package ksc

import (
	"context"
	"fmt"
	"sort"
)

// TaskInfo names one task.
type TaskInfo struct {
	ID   string // TASK_UNIQUE_ID
	Name string // display name
}

// ListTasks returns every task of every group, sorted by name then id,
// through the same iterator as FindTask. Callers use it to tell a user
// which names exist when FindTask reports ErrNotFound.
func (c *Client) ListTasks(ctx context.Context) ([]TaskInfo, error) {
	r, err := c.Call(ctx, "Tasks.ResetTasksIterator", map[string]any{
		"nGroupId": 0, "bGroupIdSignificant": false,
		"strProductName": "", "strVersion": "", "strComponentName": "", "strInstanceId": "", "strTaskName": "",
		"bIncludeSupergroups": true,
	}, true)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	it := r["strTaskIteratorId"].Str()
	defer func() {
		// Ignored: the list is read, and the iterator dies with the session.
		_, _ = c.Call(context.WithoutCancel(ctx), "Tasks.ReleaseTasksIterator", map[string]any{"strTaskIteratorId": it}, false)
	}()
	var out []TaskInfo
	for i := 0; i < 100000; i++ { // bound: a misbehaving server must not loop us forever
		r, err := c.Call(ctx, "Tasks.GetNextTask", map[string]any{"strTaskIteratorId": it}, false)
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		d := r["pTaskData"].Params()
		if len(d) == 0 {
			break
		}
		name := d["TASK_INFO_PARAMS"].Get("DisplayName").Str()
		if name == "" {
			name = d.Str("DisplayName")
		}
		id := d.Str("TASK_UNIQUE_ID")
		if id == "" {
			if n, ok := d.Int("TASK_UNIQUE_ID"); ok {
				id = fmt.Sprint(n)
			}
		}
		out = append(out, TaskInfo{ID: id, Name: name})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// taskErrorAttr is where the lab's KSC puts a failed task's error text in
// GetTaskStatistics. Real KSC has no such attribute (there the text is
// empty): its per-device results are the targets' state_descr (TaskTargets).
const taskErrorAttr = "KLLAB_TASK_ERROR"

// TaskErrorText returns the failure text GetTaskStatistics carries for a
// failed task, or "" when the server reports none.
func (c *Client) TaskErrorText(ctx context.Context, taskID string) (string, error) {
	r, err := c.Call(ctx, "Tasks.GetTaskStatistics", map[string]any{"strTask": taskID}, true)
	if err != nil {
		return "", fmt.Errorf("get error of task %s: %w", taskID, err)
	}
	return r.RetVal().Params().Str(taskErrorAttr), nil
}
