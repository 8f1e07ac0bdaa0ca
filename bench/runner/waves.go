package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/sim"
)

// Settings of the waves section: Light Agent updates that take a median
// of wavesAgentMedian per host with a long tail (log-normal sigma 1, seed
// 1: a few hosts several times slower), as remote installations do.
const (
	wavesAgentMedian = 10 * time.Second
	wavesSpread      = 1.0
	wavesDelay       = 5 // agent_wait_delay and the facts cache's max_age, seconds
	wavesDeployBound = 8
	wavesForks       = 16
	wavesBarrier     = 8 // the barrier design's batch, for its predicted time
)

// waves: upgrade.yml in waves on labs whose hosts take varied times to
// update their agents, against the lab's critical path (the slowest host
// upgraded alone, through the same playbook) and with the load on KSC and
// vCenter (issue 20).
func waves(ctx context.Context, e *Env) Section {
	var sizes []int
	for _, f := range strings.Split(envStr("BENCH_WAVES_HOSTS", e.Prof.WavesHosts), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			sizes = append(sizes, n)
		}
	}
	sec := Section{Title: "4b. Rollout in waves (issue 20)",
		Intro: fmt.Sprintf("`ansible-playbook playbooks/upgrade.yml -e upgrade_waves='[1, \"10%%\", \"100%%\"]' -e upgrade_deploy_parallel=%d "+
			"-e agent_wait_delay=%d -e ksvla_agent_selection=standard -f %d` on a fresh lab (DRS moving the protected VMs, the agents choosing their SVM by the standard algorithm; 3 protected VMs per host, 1 MiB image), the Light Agent update taking each host "+
			"its own time: log-normal, median %s, sigma %.0f, seed 1. Critical path: the same playbook upgrading alone a 1-host lab whose "+
			"update takes the slowest host's time (its own deploy, boot, preparation, agent update and removal). Load: the lab's counters "+
			"over the run (`ksvla-lab status`).", wavesDeployBound, wavesDelay, wavesForks, wavesAgentMedian, wavesSpread)}
	for _, hosts := range sizes {
		if ctx.Err() != nil {
			return sec
		}
		if err := wavesRun(ctx, e, &sec, hosts); err != nil {
			sec.Notes = append(sec.Notes, fmt.Sprintf("%d hosts: not measured: %s", hosts, oneLine(err.Error())))
			logf("  waves %d hosts: %v", hosts, err)
		}
	}
	return sec
}

func wavesConfig(hosts int) sim.Config {
	return sim.Config{Hosts: hosts, VMsPerHost: 3, AgentUpdateDuration: wavesAgentMedian, AgentUpdateSpread: wavesSpread,
		AgentUpdateSeed: 1, NetworkRestartDelay: 500 * time.Millisecond, RebootDelay: time.Second}
}

// playbookRun runs upgrade.yml in waves on l and returns the run and the
// load it put on the lab.
func playbookRun(ctx context.Context, e *Env, l *lab, hosts int) (Sample, sim.Counters, error) {
	before := l.Counters()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute+time.Duration(hosts)*30*time.Second)
	defer cancel()
	s, err := run(rctx, Cmd{Argv: []string{"ansible-playbook", "playbooks/upgrade.yml", "-e", "@" + filepath.Join(l.Dir(), "vars.yml"),
		"-e", `{"upgrade_waves": [1, "10%", "100%"]}`, "-e", "upgrade_deploy_parallel=" + strconv.Itoa(wavesDeployBound),
		"-e", "agent_wait_delay=" + strconv.Itoa(wavesDelay), "-e", "ksc_wait_delay=1", "-e", "ksc_task_poll=1",
		"-e", "ksvla_facts_cache=" + filepath.Join(l.Dir(), "facts-cache.json"),
		// The lab's Light Agents pick their SVM by the vendor's standard algorithm, as a site's
		// policy does by default: stated, so each old SVM waits for its own host's agents and
		// one anchor per cluster for the agents DRS may move (not every SVM for every agent).
		"-e", "ksvla_agent_selection=standard",
		"-f", strconv.Itoa(wavesForks)}, Env: connEnv, Dir: e.Root})
	return s, l.Counters().Sub(before), err
}

func wavesRun(ctx context.Context, e *Env, sec *Section, hosts int) error {
	cfg := wavesConfig(hosts)
	l, err := startLab(ctx, e, fmt.Sprintf("waves-%d", hosts), cfg)
	if err != nil {
		return err
	}
	times := make([]time.Duration, 0, hosts)
	for _, h := range l.Vars.ESXiHosts {
		times = append(times, l.Config().AgentUpdateTime(h))
	}
	s, load, err := playbookRun(ctx, e, l, hosts)
	gaps := l.Status().Gaps
	l.close()
	if err != nil {
		return err
	}
	slowest := slowestOf(times)
	logf("  waves %d hosts: %.1f s (slowest host's agents %s)", hosts, s.Seconds, slowest.Round(time.Second))

	// The critical path: one host, the slowest one's update time.
	one := wavesConfig(1)
	one.AgentUpdateHosts = map[string]time.Duration{"esxi-01.lab.local": slowest}
	l1, err := startLab(ctx, e, fmt.Sprintf("waves-critical-%d", hosts), one)
	if err != nil {
		return err
	}
	c, _, err := playbookRun(ctx, e, l1, 1)
	l1.close()
	if err != nil {
		return fmt.Errorf("critical path run: %w", err)
	}
	logf("  waves %d hosts: critical path %.1f s", hosts, c.Seconds)

	minutes := s.Seconds / 60
	name := fmt.Sprintf("upgrade.yml in waves, %d hosts", hosts)
	sec.Rows = append(sec.Rows,
		Row{Series: Series{Name: name, Time: stat([]float64{s.Seconds}), RSSMiB: stat([]float64{float64(s.RSSKiB) / 1024})},
			Extra: map[string]Stat{
				"ksc_logins":             stat([]float64{float64(load.KSCLogins)}),
				"ksc_logins_per_host":    stat([]float64{float64(load.KSCLogins) / float64(hosts)}),
				"ksc_calls_per_host":     stat([]float64{float64(load.KSCCallsTotal) / float64(hosts)}),
				"ksc_calls_per_minute":   stat([]float64{float64(load.KSCCallsTotal) / minutes}),
				"ksc_queries_per_minute": stat([]float64{float64(load.KSCCalls["HostGroup.FindHosts"]) / minutes}),
				"vcenter_sessions":       stat([]float64{float64(load.VCenterLogins)}),
				"vcenter_calls":          stat([]float64{float64(load.VCenterCalls)}),
			}},
		Row{Series: Series{Name: fmt.Sprintf("critical path: 1 host, %s agent update", slowest.Round(time.Second)),
			Time: stat([]float64{c.Seconds}), RSSMiB: stat([]float64{float64(c.RSSKiB) / 1024})}})
	ratio := s.Seconds / c.Seconds
	sec.Goals = append(sec.Goals,
		Goal{Figure: fmt.Sprintf("%d hosts: wall-clock / critical path", hosts), Value: ratio, Unit: "x",
			Target: "<= 1.5x (at 64 hosts)", Met: boolp(ratio <= 1.5)},
		Goal{Figure: fmt.Sprintf("%d hosts: KSC logins per hypervisor", hosts), Value: float64(load.KSCLogins) / float64(hosts), Unit: "",
			Target: "<= 3", Met: boolp(float64(load.KSCLogins)/float64(hosts) <= 3)})
	sec.Notes = append(sec.Notes, fmt.Sprintf("%d hosts: agent update times %s (min–median–max); the barrier design (batches of %d, "+
		"each waiting for its slowest host) would wait %s for agents alone. Protection gaps recorded: %d. KSC calls by method: %s.",
		hosts, spreadText(times), wavesBarrier, barrierWait(times, wavesBarrier).Round(time.Second), gaps, callsText(load.KSCCalls)))
	return nil
}

func slowestOf(d []time.Duration) time.Duration {
	m := time.Duration(0)
	for _, v := range d {
		m = max(m, v)
	}
	return m
}

// barrierWait is what batches of size n wait for agents in a row: the sum
// of each batch's slowest host.
func barrierWait(times []time.Duration, n int) time.Duration {
	var sum time.Duration
	for i := 0; i < len(times); i += n {
		sum += slowestOf(times[i:min(i+n, len(times))])
	}
	return sum
}

func spreadText(times []time.Duration) string {
	s := append([]time.Duration(nil), times...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	r := func(d time.Duration) string {
		return strconv.FormatFloat(math.Round(d.Seconds()*10)/10, 'f', -1, 64) + "s"
	}
	return r(s[0]) + "–" + r(s[len(s)/2]) + "–" + r(s[len(s)-1])
}

func callsText(calls map[string]int) string {
	ms := make([]string, 0, len(calls))
	for m := range calls {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool {
		return calls[ms[i]] > calls[ms[j]] || calls[ms[i]] == calls[ms[j]] && ms[i] < ms[j]
	})
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s %d", m, calls[m])
	}
	return strings.Join(parts, ", ")
}
