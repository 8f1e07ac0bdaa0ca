package sim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
)

// Update times are drawn per host, replay for a seed, differ between
// hosts and seeds, and follow the spread asked for.
func TestAgentUpdateTime(t *testing.T) {
	cfg := Config{}
	cfg.defaults()
	hosts := make([]string, 200)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("esxi-%03d.lab.local", i+1)
	}
	spreadOf := func(c Config) (lo, hi time.Duration) {
		lo, hi = time.Hour, 0
		for _, h := range hosts {
			d := c.AgentUpdateTime(h)
			assert.Equal(t, d, c.AgentUpdateTime(h), "the same host takes the same time")
			lo, hi = min(lo, d), max(hi, d)
		}
		return lo, hi
	}
	lo, hi := spreadOf(cfg)
	assert.Equal(t, DefaultAgentUpdateSpread, cfg.AgentUpdateSpread)
	assert.Less(t, lo, cfg.AgentUpdateDuration, "some hosts are faster than the median")
	assert.Greater(t, hi, cfg.AgentUpdateDuration, "some are slower")
	assert.Less(t, hi, 4*cfg.AgentUpdateDuration, "the default spread is small")

	wide := cfg
	wide.AgentUpdateSpread = 1
	_, wideHi := spreadOf(wide)
	assert.Greater(t, wideHi, 5*cfg.AgentUpdateDuration, "sigma 1 has a long tail")

	other := cfg
	other.AgentUpdateSeed = 2
	assert.NotEqual(t, cfg.AgentUpdateTime(hosts[0]), other.AgentUpdateTime(hosts[0]), "another seed, another draw")

	fixed := cfg
	fixed.AgentUpdateSpread = -1
	fixed.AgentUpdateHosts = map[string]time.Duration{hosts[1]: time.Minute}
	assert.Equal(t, cfg.AgentUpdateDuration, fixed.AgentUpdateTime(hosts[0]))
	assert.Equal(t, time.Minute, fixed.AgentUpdateTime(hosts[1]), "an override wins")
}

// Hosts update side by side, each over its own time; a host that gets its
// new SVM while the task runs is reached by that run; the counters see the
// KSC and vCenter sessions.
func TestAgentUpdatePerHost(t *testing.T) {
	slow, fast, late := "esxi-01.lab.local", "esxi-02.lab.local", "esxi-03.lab.local"
	l := startLab(t, Config{Hosts: 3, VMsPerHost: 2, AgentUpdateDuration: 200 * time.Millisecond,
		AgentUpdateHosts: map[string]time.Duration{slow: 3 * time.Second, fast: 200 * time.Millisecond, late: 200 * time.Millisecond}})
	c, f := labClient(t, l)
	api := newKSCAPI(t, l)
	before := l.Counters()
	for _, h := range []string{slow, fast} {
		prepareNewSVM(t, l, c, f, api, h)
	}
	after := l.Counters().Sub(before)
	assert.Equal(t, 0, after.KSCLogins, "the tasks ran in the API session opened before")
	assert.Equal(t, 4, after.KSCCalls["Tasks.RunTask"], "activation and databases, per host")

	start := time.Now()
	api.call("Tasks.RunTask", map[string]any{"strTask": l.UpdateAgentsTaskID()})
	updated := func(host string) bool {
		for _, h := range l.Status().Hosts {
			if h.Name == host {
				return len(h.Agents) == 2 && h.Agents["12.6.0.200"] == 1 && h.Agents["12.2.0.400"] == 1
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return updated(fast) }, 2*time.Second, 10*time.Millisecond)
	assert.False(t, updated(slow), "the slow host is still updating when the fast one is done")
	assert.Less(t, time.Since(start), 2*time.Second)

	// Reached by the running task once its SVM serves.
	prepareNewSVM(t, l, c, f, api, late)
	require.Eventually(t, func() bool { return updated(late) }, 3*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return updated(slow) }, 5*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(start), 3*time.Second)
	stats := api.call("Tasks.GetTaskStatistics", map[string]any{"strTask": l.UpdateAgentsTaskID()})["PxgRetVal"].(map[string]any)
	assert.Equal(t, float64(6), stats["4"], "completed: every agent updated")
	assert.Zero(t, stats["16"])
	assert.Empty(t, l.Gaps())

	cnt := l.Counters()
	assert.GreaterOrEqual(t, cnt.KSCLogins, 1)
	assert.Equal(t, cnt.KSCLogins, cnt.KSCCalls["Session.StartSession"]+cnt.KSCCalls["login"])
	assert.GreaterOrEqual(t, cnt.VCenterLogins, 2, "the lab's own session and labClient's")
	n := cnt.VCenterLogins
	_, _ = labClient(t, l)
	assert.Equal(t, n+1, l.Counters().VCenterLogins, "one more client, one more session")
	assert.Nil(t, l.Status().Counters, "a plain status compares equal across runs")
	assert.Equal(t, cnt.KSCLogins, l.StatusWithCounters().Counters.KSCLogins, "ksvla-lab status carries them")
}

// prepareNewSVM deploys host's new SVM, connects it to KSC and runs the
// activation and database tasks, so it serves the host's agents.
func prepareNewSVM(t *testing.T, l *Lab, c *govmomi.Client, f *find.Finder, api *kscAPI, host string) {
	t.Helper()
	name := "svm-" + host[:len("esxi-01")] + "-6.2"
	vm := deploySVM(t, l, c, f, host, name)
	wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := vm.WaitForIP(wctx)
	require.NoError(t, err)
	klconfigNew(t, l, name, fmt.Sprintf("nagent %s %d %d", l.Vars(l.Dir()).KSCNagentAddress, NagentSSLPort, NagentPort))
	require.Eventually(t, func() bool { _, ok := kscHostByName(t, l, name); return ok }, 5*time.Second, 10*time.Millisecond)
	for _, task := range []string{ActivateTask, UpdateDatabasesTask} {
		stats := api.runTask(l.TaskID(task))
		require.Zero(t, stats["16"], "%s failed", task)
	}
}
