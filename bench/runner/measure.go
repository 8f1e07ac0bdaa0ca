package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Cmd is one command to time: argv, extra environment (secrets go here,
// never into argv), and the exit codes that count as success.
type Cmd struct {
	Argv  []string
	Env   []string
	OKRCs []int // default {0}
	Dir   string
}

// Sample is one timed run of a Cmd.
type Sample struct {
	Seconds float64 `json:"seconds"`
	RSSKiB  int64   `json:"peak_rss_kib"`
	// CPUSeconds is the command's user+system time (its tree's, among the
	// processes waited for): unlike wall time, it barely moves with the
	// load of other work on the machine.
	CPUSeconds float64 `json:"cpu_seconds"`
	Stdout     []byte  `json:"-"`
}

// run executes c once. Wall time is measured around fork+exec+wait, as
// hyperfine and /usr/bin/time do; peak RSS is wait4's ru_maxrss, the
// number `/usr/bin/time -v` prints as "Maximum resident set size": the
// largest process of the tree among those waited for.
func run(ctx context.Context, c Cmd) (Sample, error) {
	// Peak RSS comes from GNU time (package `time`), as `/usr/bin/time -v`
	// reports it: wait4's ru_maxrss of the command, the largest process of
	// its tree among those waited for. Go's ProcessState.SysUsage is not
	// used: with pidfd waits it does not reliably describe that child.
	rssFile, err := os.CreateTemp("", "bench-rss-")
	if err != nil {
		return Sample{}, err
	}
	rssFile.Close()
	defer os.Remove(rssFile.Name())
	argv := append([]string{"/usr/bin/time", "-f", "%U %S %M", "-o", rssFile.Name()}, c.Argv...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Dir = c.Dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err = cmd.Run()
	el := time.Since(start)
	if cmd.ProcessState == nil {
		return Sample{}, fmt.Errorf("run %s: %w", c.Argv[0], err)
	}
	rc := cmd.ProcessState.ExitCode()
	ok := false
	okRCs := c.OKRCs
	if len(okRCs) == 0 {
		okRCs = []int{0}
	}
	for _, want := range okRCs {
		ok = ok || rc == want
	}
	if !ok {
		return Sample{}, fmt.Errorf("run %s: exit %d: %s", strings.Join(c.Argv[:min(len(c.Argv), 4)], " "), rc, headTail(out.String()+errb.String()))
	}
	s := Sample{Seconds: el.Seconds(), Stdout: out.Bytes()}
	if b, err := os.ReadFile(rssFile.Name()); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 0 {
			s.RSSKiB, _ = strconv.ParseInt(f[len(f)-1], 10, 64) // KiB
		}
		if len(f) >= 3 {
			u, _ := strconv.ParseFloat(f[len(f)-3], 64)
			sys, _ := strconv.ParseFloat(f[len(f)-2], 64)
			s.CPUSeconds = u + sys
		}
	}
	return s, nil
}

// headTail keeps both ends of a failure's output: ansible puts the
// error class first and the traceback last.
func headTail(s string) string {
	if len(s) <= 800 {
		return s
	}
	return s[:400] + " ... " + s[len(s)-400:]
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Stat is median/min/max over the runs of one figure.
type Stat struct {
	N      int       `json:"n"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

func stat(vals []float64) Stat {
	if len(vals) == 0 {
		return Stat{}
	}
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{N: len(s), Median: med, Min: s[0], Max: s[len(s)-1], Values: vals}
}

// Series is a Cmd timed several times.
type Series struct {
	Name    string   `json:"name"`
	Time    Stat     `json:"seconds"`
	RSSMiB  Stat     `json:"peak_rss_mib"`
	Samples []Sample `json:"-"`
	Note    string   `json:"note,omitempty"`
}

// measure runs c up to runs times (after warmup untimed runs). When the
// runs so far took longer than budget, it stops early and says so: a
// peer that needs minutes per run would otherwise eat the whole suite.
// before, if set, runs untimed before every run (e.g. delete the VM the
// previous run deployed); after gets each sample.
func measure(ctx context.Context, name string, c Cmd, runs, warmup int, budget time.Duration, before func() error, after func(Sample) error) (Series, error) {
	se := Series{Name: name}
	for i := 0; i < warmup; i++ {
		if before != nil {
			if err := before(); err != nil {
				return se, err
			}
		}
		if _, err := run(ctx, c); err != nil {
			return se, fmt.Errorf("%s (warm-up): %w", name, err)
		}
	}
	var secs, rss []float64
	var spent time.Duration
	for i := 0; i < runs; i++ {
		if i > 0 && budget > 0 && spent > budget {
			se.Note = fmt.Sprintf("stopped after %d of %d runs: the runs took %.0f s, over this figure's %.0f s budget", i, runs, spent.Seconds(), budget.Seconds())
			break
		}
		if before != nil {
			if err := before(); err != nil {
				return se, err
			}
		}
		s, err := run(ctx, c)
		if err != nil {
			return se, fmt.Errorf("%s: %w", name, err)
		}
		if after != nil {
			if err := after(s); err != nil {
				return se, fmt.Errorf("%s: %w", name, err)
			}
		}
		spent += time.Duration(s.Seconds * float64(time.Second))
		secs = append(secs, s.Seconds)
		rss = append(rss, float64(s.RSSKiB)/1024)
		se.Samples = append(se.Samples, s)
	}
	se.Time, se.RSSMiB = stat(secs), stat(rss)
	logf("  %-58s median %8.3f s  min %8.3f  max %8.3f  rss %6.1f MiB  (n=%d)", name, se.Time.Median, se.Time.Min, se.Time.Max, se.RSSMiB.Median, se.Time.N)
	return se, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
