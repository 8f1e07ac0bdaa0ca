package ksc

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/sim/kscsim"
)

// The array inside pHostStatus has no documented key: the client reads
// the lab's KLCSP_ITERATOR_ARRAY and any other key alike.
func TestParseHostStatus(t *testing.T) {
	row := `{"type":"params","value":{"hostname":"6a1f","hostdn":"vm-02","state_code":16,"state_descr":"not enough disk space"}}`
	long := `{"type":"params","value":{"hostname":"77b0","hostdn":"vm-04","state_code":{"type":"long","value":16},"state_descr":""}}`
	want := []TaskTarget{{HostID: "6a1f", Name: "vm-02", State: 16, Text: "not enough disk space"}, {HostID: "77b0", Name: "vm-04", State: 16}}
	for name, raw := range map[string]string{
		"KLCSP_ITERATOR_ARRAY":   `{"KLCSP_ITERATOR_ARRAY":[` + row + `,` + long + `]}`,
		"another key":            `{"KLTSK_HOST_STATUS_ARRAY":[` + row + `,` + long + `]}`,
		"another key, not first": `{"a_count":2,"z_rows":[` + row + `,` + long + `]}`,
		"typed params wrapper":   `{"type":"params","value":{"rows":[` + row + `,` + long + `]}}`,
		"the array itself":       `[` + row + `,` + long + `]`,
		"bare rows, no wrapper":  `{"x":[{"hostname":"6a1f","hostdn":"vm-02","state_code":16,"state_descr":"not enough disk space"},{"hostname":"77b0","hostdn":"vm-04","state_code":16}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			var v Value
			require.NoError(t, json.Unmarshal([]byte(raw), &v))
			var got []TaskTarget
			for _, p := range parseHostStatus(v) {
				got = append(got, targetOf(p))
			}
			assert.Equal(t, want, got)
		})
	}
	var empty Value
	require.NoError(t, json.Unmarshal([]byte(`{}`), &empty))
	assert.Empty(t, parseHostStatus(empty))
}

func TestTaskTargets(t *testing.T) {
	s, _ := lab(t, kscsim.Config{FailTasksOn: map[string]string{"vm-05": "Installation package not found"}})
	var ids []string
	for _, n := range []string{"vm-01", "vm-02", "vm-03", "vm-04", "vm-05"} {
		ids = append(ids, s.UpsertHost(kscsim.Host{DisplayName: n}))
	}
	done := make(chan struct{})
	id := s.AddTargetTask("Update Light Agent", func(_ context.Context, r *kscsim.Run) error {
		defer close(done)
		r.SetTargets(ids...)
		r.Done(ids[1], assert.AnError)
		return nil
	})
	c := client(t, s, nil)
	ctx := context.Background()
	require.NoError(t, c.RunTask(ctx, id))
	<-done
	require.Eventually(t, func() bool { st, err := c.TaskState(ctx, id); return err == nil && st.Done() }, 5*time.Second, 10*time.Millisecond)

	failed, err := c.TaskTargets(ctx, id, TargetFailed, 0)
	require.NoError(t, err)
	assert.Equal(t, []TaskTarget{
		{HostID: ids[1], Name: "vm-02", State: TargetFailed, Text: assert.AnError.Error()},
		{HostID: ids[4], Name: "vm-05", State: TargetFailed, Text: "Installation package not found"},
	}, failed)
	all, err := c.TaskTargets(ctx, id, 0, 0)
	require.NoError(t, err)
	assert.Len(t, all, 5)
	first, err := c.TaskTargets(ctx, id, TargetCompleted, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"vm-01", "vm-03"}, []string{first[0].Name, first[1].Name})
	assert.Equal(t, s.Calls()["Tasks.ResetHostIteratorForTaskStatusEx"], s.Calls()["Tasks.ReleaseHostStatusIterator"], "every iterator released")

	_, err = c.TaskTargets(ctx, "999", TargetFailed, 0)
	assert.ErrorContains(t, err, "list targets of task 999")
}
