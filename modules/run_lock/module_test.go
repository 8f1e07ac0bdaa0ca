package runlock

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// Two runs, one lock: the first takes it, the second is refused naming
// the holder (a warning in check mode), the holder refreshes and
// releases it, then the second takes it. An expired lock is taken over
// with a warning.
func TestLock(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	v := l.Vars(l.Dir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := func(run string, extra map[string]any) map[string]any {
		return labtest.Args(labtest.VCenterArgs(v), map[string]any{"datacenter": v.Datacenter, "run_id": run, "settle": 0}, extra)
	}

	check := ansibletest.Run(t, ctx, "run_lock", New(), args("run-a", nil), ansibletest.Mode{Check: true, Diff: true})
	require.False(t, check.Failed(), check.Msg())
	assert.True(t, check.Changed())
	assert.Nil(t, check["holder"], "check mode writes nothing")

	a := ansibletest.Run(t, ctx, "run_lock", New(), args("run-a", nil), ansibletest.Mode{})
	require.False(t, a.Failed(), a.Msg())
	assert.Equal(t, "took the upgrade lock of datacenter "+v.Datacenter, a.Msg())
	assert.Equal(t, "run-a", ansibletest.Get(a, "holder", "run_id"))

	b := ansibletest.Run(t, ctx, "run_lock", New(), args("run-b", nil), ansibletest.Mode{})
	require.True(t, b.Failed())
	assert.Contains(t, b.Msg(), "another upgrade run holds the lock of datacenter "+v.Datacenter+": ")
	assert.Contains(t, b.Msg(), "(run run-a, holding the whole datacenter) since ")
	bCheck := ansibletest.Run(t, ctx, "run_lock", New(), args("run-b", nil), ansibletest.Mode{Check: true})
	require.False(t, bCheck.Failed(), bCheck.Msg())
	assert.Contains(t, ansibletest.Get(bCheck, "warnings", 0), "another upgrade run holds the lock of datacenter "+v.Datacenter)
	assert.False(t, bCheck.Changed())
	notMine := ansibletest.Run(t, ctx, "run_lock", New(), args("run-b", map[string]any{"state": "released"}), ansibletest.Mode{})
	require.False(t, notMine.Failed(), notMine.Msg())
	assert.False(t, notMine.Changed(), "only the holder releases")

	refresh := ansibletest.Run(t, ctx, "run_lock", New(), args("run-a", nil), ansibletest.Mode{})
	require.False(t, refresh.Failed(), refresh.Msg())
	assert.Contains(t, refresh.Msg(), "refreshed the upgrade lock")
	assert.Equal(t, ansibletest.Get(a, "holder", "since"), ansibletest.Get(refresh, "holder", "since"), "since stays")

	rel := ansibletest.Run(t, ctx, "run_lock", New(), args("run-a", map[string]any{"state": "released"}), ansibletest.Mode{})
	require.False(t, rel.Failed(), rel.Msg())
	assert.True(t, rel.Changed())

	short := ansibletest.Run(t, ctx, "run_lock", New(), args("run-b", map[string]any{"ttl": 1}), ansibletest.Mode{})
	require.False(t, short.Failed(), short.Msg())
	time.Sleep(1100 * time.Millisecond)
	over := ansibletest.Run(t, ctx, "run_lock", New(), args("run-c", nil), ansibletest.Mode{})
	require.False(t, over.Failed(), over.Msg())
	assert.Contains(t, over["warnings"].([]any)[0], "took over the upgrade lock of datacenter "+v.Datacenter+" from ")
	assert.Equal(t, "run-c", ansibletest.Get(over, "holder", "run_id"))
	release := ansibletest.Run(t, ctx, "run_lock", New(), args("run-c", map[string]any{"state": "released"}), ansibletest.Mode{})
	require.False(t, release.Failed(), release.Msg())

	// Runs on disjoint hypervisors (AWX job slices) hold it side by side;
	// one that shares a hypervisor with either is refused, naming it.
	x := ansibletest.Run(t, ctx, "run_lock", New(), args("run-x", map[string]any{"hosts": []any{"h1", "h2"}}), ansibletest.Mode{})
	require.False(t, x.Failed(), x.Msg())
	y := ansibletest.Run(t, ctx, "run_lock", New(), args("run-y", map[string]any{"hosts": []any{"h3"}}), ansibletest.Mode{})
	require.False(t, y.Failed(), y.Msg())
	z := ansibletest.Run(t, ctx, "run_lock", New(), args("run-z", map[string]any{"hosts": []any{"h3", "h4"}}), ansibletest.Mode{})
	require.True(t, z.Failed())
	assert.Contains(t, z.Msg(), "(run run-y, holding h3) since ")
	whole := ansibletest.Run(t, ctx, "run_lock", New(), args("run-w", nil), ansibletest.Mode{})
	require.True(t, whole.Failed(), "the whole datacenter overlaps every run")
	xAgain := ansibletest.Run(t, ctx, "run_lock", New(), args("run-x", map[string]any{"hosts": []any{"h1", "h2"}}), ansibletest.Mode{})
	require.False(t, xAgain.Failed(), xAgain.Msg())
	assert.Contains(t, xAgain.Msg(), "refreshed", "a refresh keeps the other run's hold")
	z = ansibletest.Run(t, ctx, "run_lock", New(), args("run-z", map[string]any{"hosts": []any{"h3"}}), ansibletest.Mode{})
	require.True(t, z.Failed(), "run-y still holds h3 after run-x's refresh")
}

// Bounds are checked with the other options, before vCenter is asked
// anything, and the error names the option.
func TestBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := map[string]any{"hostname": "vc.invalid", "username": "u", "password": "p", "datacenter": "dc", "run_id": "r"}
	for _, tc := range []struct {
		option string
		value  any
		msg    string
	}{
		{"ttl", 0, "value of ttl must be between 1 and 604800, got: 0"},
		{"wait_timeout", 0, "value of wait_timeout must be between 1 and 604800, got: 0"},
		{"settle", -1, "value of settle must be between 0 and 604800, got: -1"},
		{"timeout", 0, "value of timeout must be between 1 and 604800, got: 0"},
	} {
		t.Run(tc.option, func(t *testing.T) {
			args := labtest.Args(base, map[string]any{tc.option: tc.value})
			got := ansibletest.Run(t, ctx, "run_lock", New(), args, ansibletest.Mode{})
			require.True(t, got.Failed())
			assert.Equal(t, tc.msg, got.Msg())
		})
	}
}
