package agentfacts

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hosts of a wave polling at once make one vCenter and one KSC read
// per interval between them, and each gets the facts a live read of its
// own host gives.
func TestCacheOneReadPerInterval(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 6, VMsPerHost: 2})
	hosts := l.Vars(l.Dir()).ESXiHosts
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "facts.json")
	args := func(host string, maxAge int) map[string]any {
		a := labArgs(l)
		a["esxi_hostnames"] = []any{host}
		if maxAge >= 0 {
			a["cache"] = map[string]any{"path": path, "max_age": maxAge}
		}
		return a
	}

	// One live read: what a read costs.
	before := l.Counters()
	live := map[string]ansible.Result{}
	for _, h := range hosts {
		live[h] = ansibletest.Run(t, ctx, "agent_facts", New(), args(h, -1), ansibletest.Mode{})
	}
	perRead := l.Counters().Sub(before)
	require.Equal(t, len(hosts), perRead.KSCLogins, "without the cache every caller logs in")
	findPerRead := perRead.KSCCalls["HostGroup.FindHosts"] / len(hosts)
	require.Positive(t, findPerRead)

	for round, maxAge := range []int{30, 1} {
		if round > 0 {
			time.Sleep(1100 * time.Millisecond) // past max_age: a new interval
		}
		before = l.Counters()
		results := make([]ansible.Result, len(hosts))
		var wg sync.WaitGroup
		for i, h := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = ansibletest.Run(t, ctx, "agent_facts", New(), args(h, maxAge), ansibletest.Mode{})
			}()
		}
		wg.Wait()
		load := l.Counters().Sub(before)
		assert.Equal(t, 1, load.KSCLogins, "round %d: one KSC login for %d callers", round, len(hosts))
		assert.Equal(t, findPerRead, load.KSCCalls["HostGroup.FindHosts"], "round %d: one KSC query", round)
		assert.Equal(t, 1, load.VCenterLogins, "round %d: one vCenter session", round)
		hits := 0
		for i, h := range hosts {
			res := results[i]
			require.False(t, res.Failed(), res.Msg())
			hv := hypervisors(t, res)
			require.Len(t, hv, 1, "scoped to its own host")
			assert.Equal(t, hypervisors(t, live[h]), hv, "the same facts as a live read of %s", h)
			assert.Equal(t, ansibletest.Get(live[h], "agents"), ansibletest.Get(res, "agents"))
			if ansibletest.Get(res, "cache", "hit") == true {
				hits++
			}
		}
		assert.Equal(t, len(hosts)-1, hits, "round %d: every caller but the first takes the file", round)
	}

	// Other products: another read, not the file's.
	before = l.Counters()
	other := args(hosts[0], 30)
	other["la_products"] = []any{"kesl"}
	res := ansibletest.Run(t, ctx, "agent_facts", New(), other, ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.Equal(t, false, ansibletest.Get(res, "cache", "hit"))
	assert.Equal(t, 1, l.Counters().Sub(before).KSCLogins)

	bad := args(hosts[0], 30)
	bad["cache"] = map[string]any{"path": filepath.Join(path, "facts.json")} // under a file
	res = ansibletest.Run(t, ctx, "agent_facts", New(), bad, ansibletest.Mode{})
	assert.True(t, res.Failed())
	assert.Contains(t, res.Msg(), "cache.path: cannot create the directory of")
}
