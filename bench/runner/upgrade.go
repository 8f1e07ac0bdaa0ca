package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ksvla/lightagent/internal/sim"
)

// upgrade: the whole playbooks/upgrade.yml on a fresh lab per run (a
// second run over the same lab would change nothing), forks 1 and 8 with
// the batch size equal to the forks. ksc_purge of 1000 records is a Go
// benchmark (BenchmarkPurge1000, section 5).
func upgrade(ctx context.Context, e *Env) Section {
	hosts := envInt("BENCH_UPGRADE_HOSTS", 16)
	runs := envInt("BENCH_UPGRADE_RUNS", 1)
	sec := Section{Title: fmt.Sprintf("4. Whole upgrade (%d hosts)", hosts),
		Intro: fmt.Sprintf("`ansible-playbook playbooks/upgrade.yml -e @vars.yml -e upgrade_batch_size=N -e agent_wait_delay=1 "+
			"-e ksc_wait_delay=1 -e ksc_task_poll=1 -f N` on a fresh %d-host lab (3 protected VMs per host, 1 MiB image, "+
			"Light Agent update task 1 s, SVM network restart 0.5 s) per run. ksc_purge of 1000 records: BenchmarkPurge1000 in section 5.", hosts)}
	if runs < 5 {
		sec.Notes = append(sec.Notes, fmt.Sprintf("%d run(s) per setting, not 5: each run needs its own lab and takes minutes; "+
			"BENCH_UPGRADE_RUNS=5 runs five within a longer budget.", runs))
	}
	var series []Series
	for _, forks := range []int{1, 8} {
		var secs, rss []float64
		var samples []Sample
		name := fmt.Sprintf("upgrade.yml, forks %d, batch %d", forks, forks)
		var failed error
		for i := 0; i < runs && failed == nil; i++ {
			l, err := startLab(ctx, e, fmt.Sprintf("upgrade-%d-%d", forks, i), sim.Config{Hosts: hosts, VMsPerHost: 3,
				AgentUpdateDuration: time.Second, NetworkRestartDelay: 500 * time.Millisecond, RebootDelay: time.Second})
			if err != nil {
				failed = err
				break
			}
			rctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
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
				failed = err
				break
			}
			secs, rss, samples = append(secs, s.Seconds), append(rss, float64(s.RSSKiB)/1024), append(samples, s)
			logf("  %s: run %d %.1f s", name, i+1, s.Seconds)
		}
		if failed != nil {
			sec.Notes = append(sec.Notes, fmt.Sprintf("%s: not measured: %s", name, oneLine(failed.Error())))
			logf("  %s: %v", name, failed)
			continue
		}
		se := Series{Name: name, Time: stat(secs), RSSMiB: stat(rss), Samples: samples}
		series = append(series, se)
		sec.Rows = append(sec.Rows, Row{Series: se, Extra: map[string]Stat{"seconds_per_host": stat(scaleAll(secs, 1/float64(hosts)))}})
	}
	if len(series) == 2 {
		sec.Goals = append(sec.Goals, Goal{Figure: "forks 1 / forks 8 (time)", Value: series[0].Time.Median / series[1].Time.Median, Unit: "x",
			Target: "no goal stated in the issue; > 1 means batching pays"})
	}
	return sec
}

func scaleAll(v []float64, f float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x * f
	}
	return out
}
