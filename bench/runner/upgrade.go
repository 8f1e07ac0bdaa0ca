package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/sim"
)

// upgrade: the whole playbooks/upgrade.yml on a fresh lab per run (a
// second run over the same lab would change nothing), for each lab size
// with forks 1 and 8 and the batch size equal to the forks. ksc_purge of
// 1000 records is a Go benchmark (BenchmarkPurge1000, section 5).
func upgrade(ctx context.Context, e *Env) Section {
	runs := envInt("BENCH_UPGRADE_RUNS", 1)
	var sizes []int
	for _, f := range strings.Split(envStr("BENCH_UPGRADE_HOSTS", e.Prof.UpgradeHosts), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			sizes = append(sizes, n)
		}
	}
	sec := Section{Title: "4. Whole upgrade",
		Intro: "`ansible-playbook playbooks/upgrade.yml -e @vars.yml -e upgrade_batch_size=N -e agent_wait_delay=1 " +
			"-e ksc_wait_delay=1 -e ksc_task_poll=1 -f N` on a fresh lab per run (3 protected VMs per host, 1 MiB image, " +
			"Light Agent update task 1 s, SVM network restart 0.5 s, reboot 1 s). The lab records every moment a protected VM " +
			"had no compatible SVM; a run with such a gap is reported. ksc_purge of 1000 records: BenchmarkPurge1000 in section 5."}
	if runs < 5 {
		sec.Notes = append(sec.Notes, fmt.Sprintf("%d run(s) per setting, not 5: each run needs its own lab and takes minutes; "+
			"BENCH_UPGRADE_RUNS=5 runs five within a longer budget.", runs))
	}
	for _, hosts := range sizes {
		var series []Series
		for _, forks := range []int{1, 8} {
			if ctx.Err() != nil {
				return sec
			}
			se, err := upgradeRuns(ctx, e, &sec, hosts, forks, runs)
			if err != nil {
				sec.Notes = append(sec.Notes, fmt.Sprintf("%s: not measured: %s", se.Name, oneLine(err.Error())))
				logf("  %s: %v", se.Name, err)
				continue
			}
			series = append(series, se)
			sec.Rows = append(sec.Rows, Row{Series: se, Extra: map[string]Stat{"seconds_per_host": stat(scaleAll(sampleSeconds(se), 1/float64(hosts)))}})
		}
		if len(series) == 2 {
			sec.Goals = append(sec.Goals, Goal{Figure: fmt.Sprintf("%d hosts: forks 1 / forks 8 (time)", hosts), Value: series[0].Time.Median / series[1].Time.Median, Unit: "x",
				Target: "no goal stated in the issue; > 1 means batching pays"})
		}
	}
	return sec
}

// upgradeRuns measures runs whole upgrades of a hosts-host lab with forks.
func upgradeRuns(ctx context.Context, e *Env, sec *Section, hosts, forks, runs int) (Series, error) {
	name := fmt.Sprintf("upgrade.yml, %d hosts, forks %d, batch %d", hosts, forks, forks)
	var secs, rss []float64
	var samples []Sample
	for i := 0; i < runs; i++ {
		l, err := startLab(ctx, e, fmt.Sprintf("upgrade-%d-%d-%d", hosts, forks, i), sim.Config{Hosts: hosts, VMsPerHost: 3,
			AgentUpdateDuration: time.Second, NetworkRestartDelay: 500 * time.Millisecond, RebootDelay: time.Second})
		if err != nil {
			return Series{Name: name}, err
		}
		rctx, cancel := context.WithTimeout(ctx, time.Duration(hosts)*time.Minute)
		s, err := run(rctx, Cmd{Argv: []string{"ansible-playbook", "playbooks/upgrade.yml", "-e", "@" + filepath.Join(l.Dir(), "vars.yml"),
			"-e", "upgrade_batch_size=" + strconv.Itoa(forks), "-e", "agent_wait_delay=1", "-e", "ksc_wait_delay=1", "-e", "ksc_task_poll=1",
			"-f", strconv.Itoa(forks)}, Env: connEnv, Dir: e.Root})
		cancel()
		if err == nil {
			if st := l.Status(); st.Gaps > 0 {
				sec.Notes = append(sec.Notes, fmt.Sprintf("%s run %d: the lab recorded %d protection gap(s).", name, i+1, st.Gaps))
			}
		}
		l.close()
		if err != nil {
			return Series{Name: name}, err
		}
		secs, rss, samples = append(secs, s.Seconds), append(rss, float64(s.RSSKiB)/1024), append(samples, s)
		logf("  %s: run %d %.1f s", name, i+1, s.Seconds)
	}
	return Series{Name: name, Time: stat(secs), RSSMiB: stat(rss), Samples: samples}, nil
}

func sampleSeconds(se Series) []float64 {
	out := make([]float64, len(se.Samples))
	for i, s := range se.Samples {
		out[i] = s.Seconds
	}
	return out
}

func scaleAll(v []float64, f float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x * f
	}
	return out
}
