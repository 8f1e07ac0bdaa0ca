// Command runner is the benchmark suite behind `make bench`: it times the
// collection's module binary against the tools admins use today (Python
// modules through ansible, govc v0.46.3, community.vmware) on labs it
// starts in-process, and writes bench/RESULTS.md and bench/results.json.
//
// Every figure is median/min/max over repeated runs measured in the same
// run as its peers, so ratios compare like with like.
//
// Two profiles: `make bench` (the default, -profile quick) finishes in
// under 15 minutes on a 2-core machine and writes RESULTS.md;
// `make bench-full` (-profile full) adds the 16k-VM lab, vmware_vm_info
// at 4k VMs, the 1 GiB image and the 64-host upgrades, takes about an
// hour, and writes RESULTS-full.md. Knobs (environment) override either:
//
//	BENCH_RUNS          runs per figure (default 5)
//	BENCH_SCALES        facts labs as HOSTSxVMS, comma separated
//	BENCH_IMAGE_SIZE    deploy image disk payload
//	BENCH_UPGRADE_RUNS  whole-upgrade runs per setting (default 1)
//	BENCH_UPGRADE_HOSTS hosts of the upgrade labs, comma separated
//	BENCH_PEER_MAX_SECONDS  skip a vmware_vm_info run projected longer
//	BENCH_WAVES_HOSTS   hosts of the waves labs (issue 20), comma separated
//	BENCH_GO_COUNT      -count of the Go benchmarks (default 5)
//	BENCH_SKIP          sections to skip: overhead,facts,deploy,upgrade,waves,gobench
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Env is what every section needs: where things are.
type Env struct {
	Root   string // repository root
	Work   string // scratch: args files, playbooks, labs (gitignored)
	Govc   string // govc v0.46.3 binary
	PyPath string // PYTHONPATH with pyVmomi 8, "" when not installed
	Runs   int
	Prof   Profile
	// peerSecPerVM is vmware_vm_info's median seconds per VM at the last
	// scale measured, to project the next one.
	peerSecPerVM float64
}

// Profile is what one suite run covers, and where it writes.
type Profile struct {
	Name         string `json:"name"`
	Command      string `json:"command"`
	Markdown     string `json:"-"`
	JSON         string `json:"-"`
	Scales       string `json:"scales"`
	ImageSize    string `json:"image_size"`
	UpgradeHosts string `json:"upgrade_hosts"`
	WavesHosts   string `json:"waves_hosts"`
	PeerMaxSec   int    `json:"peer_max_seconds"`
}

var profiles = map[string]Profile{
	"quick": {Name: "quick", Command: "make bench", Markdown: "RESULTS.md", JSON: "results.json",
		Scales: "16x64,64x64", ImageSize: "256MiB", UpgradeHosts: "16", WavesHosts: "64", PeerMaxSec: 120},
	"full": {Name: "full", Command: "make bench-full", Markdown: "RESULTS-full.md", JSON: "results-full.json",
		Scales: "16x64,64x64,64x256", ImageSize: "1GiB", UpgradeHosts: "16,64", WavesHosts: "32,64", PeerMaxSec: 600},
}

// envStr is the environment's value of name, or def.
func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Report is results.json.
type Report struct {
	Profile  Profile   `json:"profile"`
	Date     string    `json:"date"`
	Machine  Machine   `json:"machine"`
	Seconds  float64   `json:"suite_seconds"`
	Sections []Section `json:"sections"`
	GoBench  []GoBench `json:"go_benchmarks"`
	GoNote   string    `json:"go_benchmarks_note,omitempty"`
}

// Section is one figure group: rows of series, the ratios between them,
// each goal beside its figure, and notes (what could not be measured).
type Section struct {
	Title string   `json:"title"`
	Intro string   `json:"intro,omitempty"`
	Rows  []Row    `json:"rows"`
	Goals []Goal   `json:"goals"`
	Notes []string `json:"notes,omitempty"`
}

// Row is one measured command, with per-figure extras (round trips,
// throughput) as median values.
type Row struct {
	Series
	Extra map[string]Stat `json:"extra,omitempty"`
}

// Goal is a figure compared to its target from issue 9.
type Goal struct {
	Figure string  `json:"figure"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target"`
	Met    *bool   `json:"met"` // nil: not measured
	Note   string  `json:"note,omitempty"`
}

func boolp(b bool) *bool { return &b }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func skipped(name string) bool {
	for _, s := range strings.Split(os.Getenv("BENCH_SKIP"), ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

func main() {
	root := flag.String("root", ".", "repository root")
	out := flag.String("out", "bench", "directory for the results")
	profile := flag.String("profile", "quick", "quick (make bench, under 15 minutes) or full (make bench-full)")
	cpuProfile := flag.String("cpuprofile", "", "write the runner's CPU profile (the in-process labs: vCenter, KSC, SVMs) to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -cpuprofile:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	prof, ok := profiles[*profile]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: -profile %q: want quick or full\n", *profile)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := suite(ctx, *root, *out, prof); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func suite(ctx context.Context, root, out string, prof Profile) error {
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	e := &Env{Root: root, Work: filepath.Join(root, "bench", ".work"), Govc: filepath.Join(root, "bench", ".bin", "govc"),
		Runs: envInt("BENCH_RUNS", 5), Prof: prof}
	if err := os.RemoveAll(e.Work); err != nil {
		return err
	}
	if err := os.MkdirAll(e.Work, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(e.Work) // labs write OVAs there; nothing in it is a result
	if py := filepath.Join(root, "bench", ".py"); pyvmomiAt(py) {
		e.PyPath = py
	}
	start := time.Now()
	rep := Report{Profile: prof, Date: start.UTC().Format(time.RFC3339), Machine: machine(ctx)}
	rep.Machine.tools(e)
	write := func() error {
		rep.Seconds = time.Since(start).Seconds()
		return writeReport(out, rep)
	}
	sections := []struct {
		name string
		fn   func(context.Context, *Env) Section
	}{
		{"overhead", overhead},
		{"facts", facts},
		{"deploy", deploy},
		{"upgrade", upgrade},
		{"waves", waves},
	}
	for _, s := range sections {
		if skipped(s.name) {
			continue
		}
		logf("section %s", s.name)
		rep.Sections = append(rep.Sections, s.fn(ctx, e))
		// Written after each section: a suite stopped half-way still
		// leaves what it measured.
		if err := write(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if !skipped("gobench") {
		logf("section go benchmarks")
		rep.GoBench, rep.GoNote = goBench(ctx, e)
	}
	if err := write(); err != nil {
		return err
	}
	logf("done in %s: %s", time.Since(start).Round(time.Second), filepath.Join(out, prof.Markdown))
	return nil
}

func pyvmomiAt(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "pyVmomi", "__init__.py"))
	return err == nil
}

// writeJSON writes v to path with mode 0600 (args files carry passwords).
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// failedSection is a section that could not run at all.
func failedSection(title string, err error) Section {
	logf("  %s: not measured: %v", title, err)
	return Section{Title: title, Notes: []string{"not measured: " + oneLine(err.Error())}}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}
