package tests

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostTimes are the moments the lab saw a hypervisor's steps: its new SVM
// deployed, its last Light Agent updated, its old SVM gone.
type hostTimes struct{ deployed, updated, removed time.Time }

// watchHosts samples the lab until stop, noting when each host reached
// each step; sampled, if not nil, sees every sample.
func watchHosts(l *sim.Lab, stop <-chan struct{}, sampled func(map[string]hostTimes)) func() map[string]hostTimes {
	v := l.Vars(l.Dir())
	newAgents := v.AgentVersions(true)
	var mu sync.Mutex
	seen := map[string]hostTimes{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			now := time.Now()
			st := l.Status()
			mu.Lock()
			for _, h := range st.Hosts {
				ht := seen[h.Name]
				old := false
				for _, s := range h.SVMs {
					if s.Version == v.NewVersion && ht.deployed.IsZero() {
						ht.deployed = now
					}
					old = old || s.Version == v.OldVersion
				}
				allNew := len(h.Agents) > 0
				for ver := range h.Agents {
					allNew = allNew && slices.Contains(newAgents, ver)
				}
				if allNew && ht.updated.IsZero() {
					ht.updated = now
				}
				if !old && ht.removed.IsZero() {
					ht.removed = now
				}
				seen[h.Name] = ht
			}
			if sampled != nil {
				sampled(seen)
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() map[string]hostTimes {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// Waves, not barriers: one slow hypervisor in the first wave does not hold
// the next wave's deploys, every hypervisor removes its old SVM once its
// own agents are updated (the fast ones before the slow one is done), no
// protected VM is ever left without a compatible SVM, and the hosts'
// waits share one KSC read per interval, so KSC logins stay within 3 per
// hypervisor. With upgrade_wait_agents_per_wave the next wave waits.
func TestUpgradeInWaves(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	hosts := 20
	if n, err := strconv.Atoi(os.Getenv("KSVLA_WAVES_HOSTS")); err == nil && n > 1 {
		hosts = n
	}
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("wait_agents_per_wave=%v", strict), func(t *testing.T) {
			n := hosts
			if strict {
				n = 3 // only the order of the waves is checked
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			slow := "esxi-01.lab.local"
			// Without the per-wave wait the slow host's agents are held
			// until every other host has removed its old SVM: a barrier
			// anywhere holds those removals, so the run ends only when the
			// hold gives up (holdAtMost) and the order checks below fail.
			// A fixed update time would race the others on a busy machine.
			// With the wait, 25 s is the whole update: the next wave must
			// not start before it, however slow the machine.
			var held atomic.Bool
			held.Store(!strict)
			const holdAtMost = 8 * time.Minute
			giveUp := time.AfterFunc(holdAtMost, func() { held.Store(false) })
			defer giveUp.Stop()
			// Protected VMs held on their hosts (DRS VM overrides): where DRS
			// may move them, every old SVM of the cluster waits for every
			// agent (TestUpgradeWhileDRSMovesAgents), and waves only deploy.
			l := labtest.Start(t, sim.Config{Hosts: n, VMsPerHost: 1, AgentUpdateDuration: 500 * time.Millisecond,
				AgentUpdateSpread: -1, AgentUpdateHosts: map[string]time.Duration{slow: 25 * time.Second}, ProtectedVMsStay: true,
				AgentUpdateHold: func(host string) bool { return host == slow && held.Load() }})
			require.Equal(t, slow, l.Vars(l.Dir()).ESXiHosts[0], "the slow host leads the first wave")
			before := l.Counters()
			var atRelease sim.Counters
			esxi := l.Vars(l.Dir()).ESXiHosts
			stop := make(chan struct{})
			times := watchHosts(l, stop, func(seen map[string]hostTimes) {
				if !held.Load() {
					return
				}
				for _, h := range esxi {
					if h != slow && seen[h].removed.IsZero() {
						return
					}
				}
				atRelease = l.Counters()
				held.Store(false)
			})
			run := upgrade(t, ctx, l, playtest.Options{Args: []string{
				"-e", `{"upgrade_waves": [1, "100%"]}`, "-e", "upgrade_wait_agents_per_wave=" + strconv.FormatBool(strict),
				"-e", "agent_wait_delay=5", "-e", "upgrade_deploy_parallel=8", "--forks", strconv.Itoa(n)}})
			close(stop)
			seen := times()
			require.Zero(t, run.ExitCode, run.Output)
			assertUpgraded(t, l)
			load := l.Counters().Sub(before)

			slowUpdated := seen[slow].updated
			require.False(t, slowUpdated.IsZero())
			for _, h := range l.Vars(l.Dir()).ESXiHosts {
				ht := seen[h]
				require.False(t, ht.deployed.IsZero() || ht.updated.IsZero() || ht.removed.IsZero(), "%s: %+v", h, ht)
				assert.False(t, ht.removed.Before(ht.updated), "%s: old SVM removed before its agents were updated", h)
				if h == slow {
					continue
				}
				if strict {
					assert.True(t, ht.deployed.After(slowUpdated), "%s deployed before the first wave's agents were updated", h)
					continue
				}
				assert.True(t, ht.deployed.Before(slowUpdated), "%s (second wave) waited for the slow host's agents", h)
				assert.True(t, ht.removed.Before(slowUpdated), "%s waited for the slow host to remove its old SVM", h)
			}
			t.Logf("%d hosts: KSC %d logins (%.2f per hypervisor), %d FindHosts; vCenter %d sessions", n, load.KSCLogins,
				float64(load.KSCLogins)/float64(n), load.KSCCalls["HostGroup.FindHosts"], load.VCenterLogins)
			if !strict {
				// Counted while every hypervisor worked: after that only the
				// held host polls, for as long as the test held it.
				require.NotZero(t, atRelease.KSCLogins, "the slow host was never released by the others' removals")
				busy := atRelease.Sub(before)
				assert.LessOrEqual(t, float64(busy.KSCLogins)/float64(n), 3.0, "KSC logins per hypervisor: %v", busy.KSCCalls)
			}
		})
	}
}
