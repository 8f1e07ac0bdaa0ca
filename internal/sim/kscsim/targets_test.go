package kscsim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// A task on five devices: the work fails one, FailTasksOn fails another,
// one completes with a warning; the statistics count the targets per
// state and the host status iterator lists them, filtered by state.
func TestTaskTargets(t *testing.T) {
	s, _ := startTest(t, Config{FailTasksOn: map[string]string{"vm-03": "Installation package not found"}})
	var ids []string
	for _, n := range []string{"vm-01", "vm-02", "vm-03", "vm-04", "vm-05"} {
		ids = append(ids, s.UpsertHost(Host{DisplayName: n}))
	}
	taskID := s.AddTargetTask("Update Light Agent", func(_ context.Context, r *Run) error {
		r.SetTargets(ids...)
		r.Running(ids[0])
		r.Done(ids[0], nil)
		r.Done(ids[1], errors.New("not enough disk space"))
		r.Warn(ids[3], "restart required")
		return nil // vm-03 and vm-05 left to the end: completed, vm-03 then failed by FailTasksOn
	})
	c := newWireClient(t, s)
	c.startSession()
	c.ok("Tasks.RunTask", map[string]any{"strTask": taskID})
	stat := func() gjson.Result {
		return c.ok("Tasks.GetTaskStatistics", map[string]any{"strTask": taskID}).Get("PxgRetVal")
	}
	require.Eventually(t, func() bool { return stat().Get("16").Int() == 2 }, 2*time.Second, 5*time.Millisecond)
	st := stat()
	assert.Equal(t, []int64{2, 1, 2, 0, 0}, []int64{st.Get("4").Int(), st.Get("8").Int(), st.Get("16").Int(), st.Get("2").Int(), st.Get("1").Int()})

	list := func(mask int, fields []string) []gjson.Result {
		it := c.ok("Tasks.ResetHostIteratorForTaskStatusEx", map[string]any{"strTask": taskID, "pFields2Return": fields,
			"pFields2Order": []any{}, "nHostStateMask": mask, "nLifetime": 60}).Get("strHostIteratorId").String()
		var rows []gjson.Result
		for {
			r := c.ok("Tasks.GetNextHostStatus", map[string]any{"strHostIteratorId": it, "nCount": 2})
			arr := r.Get("pHostStatus." + hostStatusArray).Array()
			require.Equal(t, int64(len(arr)), r.Get("nActual").Int())
			if len(arr) == 0 {
				break
			}
			for _, e := range arr {
				require.Equal(t, "params", e.Get("type").String(), e.Raw)
				rows = append(rows, e.Get("value"))
			}
		}
		c.ok("Tasks.ReleaseHostStatusIterator", map[string]any{"strHostIteratorId": it})
		assert.True(t, c.call("Tasks.GetNextHostStatus", map[string]any{"strHostIteratorId": it, "nCount": 1}).Get("PxgError").Exists(), "released")
		return rows
	}
	failed := list(0x10, []string{"hostname", "hostdn", "state_code", "state_descr"})
	require.Len(t, failed, 2)
	assert.Equal(t, []string{ids[1], "vm-02", "16", "not enough disk space"}, []string{failed[0].Get("hostname").String(),
		failed[0].Get("hostdn").String(), failed[0].Get("state_code").String(), failed[0].Get("state_descr").String()})
	assert.Equal(t, []string{"vm-03", "Installation package not found"}, []string{failed[1].Get("hostdn").String(), failed[1].Get("state_descr").String()})

	all := list(0, []string{"hostdn"})
	require.Len(t, all, 5)
	assert.False(t, all[0].Get("state_code").Exists(), "only the fields asked for")
	assert.Len(t, list(0x04|0x08, nil), 3)

	assert.True(t, c.call("Tasks.ResetHostIteratorForTaskStatusEx", map[string]any{"strTask": taskID, "nHostStateMask": 0x10, "nLifetime": 7201}).Get("PxgError").Exists())
	assert.Len(t, s.TaskTargets(taskID), 5)
}
