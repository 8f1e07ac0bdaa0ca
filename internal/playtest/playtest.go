// Package playtest runs the real ansible-playbook against the collection's
// modules and returns what it reported, task by task. End-to-end tests and
// benchmarks use it; it asserts nothing itself.
package playtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Root is the repository root (where ansible.cfg and go.mod live).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Modules builds the multi-call binary once per test process into a
// temporary library directory with one link per module (and a staged copy
// of the collection under collections/), and returns that directory. Tests use it instead of the checkout's library/, so they never
// run a stale binary.
func Modules() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ksvla-library-")
		if err != nil {
			buildErr = err
			return
		}
		bin := filepath.Join(dir, "ksvla")
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/ksvla")
		cmd.Dir = Root()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build ksvla: %v\n%s", err, out)
			return
		}
		list, err := exec.Command(bin, "list").Output()
		if err != nil {
			buildErr = fmt.Errorf("list modules: %w", err)
			return
		}
		for _, fq := range strings.Fields(string(list)) {
			name := fq[strings.LastIndex(fq, ".")+1:]
			if err := os.Symlink("ksvla", filepath.Join(dir, name)); err != nil {
				buildErr = err
				return
			}
			src := filepath.Join(Root(), "library", name+".yml")
			if b, err := os.ReadFile(src); err == nil {
				_ = os.WriteFile(filepath.Join(dir, name+".yml"), b, 0o644)
			}
		}
		// The same binary as the collection, so playbooks can call modules
		// by FQCN and use module_defaults groups.
		stage := exec.Command("bash", filepath.Join(Root(), "tests", "stage-collection.sh"), bin, filepath.Join(dir, "collections"))
		if out, err := stage.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("stage collection: %v\n%s", err, out)
			return
		}
		buildDir = dir
	})
	return buildDir, buildErr
}

// Options describe one ansible-playbook run.
type Options struct {
	Playbook  string         // path, relative to Root() or absolute
	ExtraVars map[string]any // passed as one JSON -e
	Env       []string       // extra environment (KEY=VALUE)
	Check     bool
	Diff      bool
	Verbosity int
	Args      []string // anything else for ansible-playbook
}

// TaskResult is one result the callback recorded.
type TaskResult struct {
	Status string         `json:"status"` // ok, failed, ignored, skipped, item_ok, item_failed
	Host   string         `json:"host"`
	Task   string         `json:"task"`
	Action string         `json:"action"`
	Result map[string]any `json:"result"`
}

// Changed reports the task's changed flag.
func (t TaskResult) Changed() bool { b, _ := t.Result["changed"].(bool); return b }

// Msg returns the task's msg.
func (t TaskResult) Msg() string { s, _ := t.Result["msg"].(string); return s }

// Stats are the play recap counters of one host.
type Stats struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failures    int `json:"failures"`
	Unreachable int `json:"unreachable"`
	Skipped     int `json:"skipped"`
	Rescued     int `json:"rescued"`
	Ignored     int `json:"ignored"`
}

// Run is what ansible-playbook reported.
type Run struct {
	ExitCode int
	Output   string // stdout and stderr, as a user would see them
	Tasks    []TaskResult
	Stats    map[string]Stats
}

// Task returns the results of the task with this name, in order.
func (r *Run) Task(name string) []TaskResult {
	var out []TaskResult
	for _, t := range r.Tasks {
		if t.Task == name {
			out = append(out, t)
		}
	}
	return out
}

// TaskNames lists the names of the tasks that reported, sorted, for
// failure messages.
func (r *Run) TaskNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range r.Tasks {
		if !seen[t.Task] {
			seen[t.Task] = true
			out = append(out, t.Task)
		}
	}
	sort.Strings(out)
	return out
}

// Playbook runs ansible-playbook from the repository root with the freshly
// built modules and returns its report. An error means the run could not
// be made or read; a failing play is reported through ExitCode and Tasks.
func Playbook(ctx context.Context, o Options) (*Run, error) {
	lib, err := Modules()
	if err != nil {
		return nil, err
	}
	out, err := os.CreateTemp("", "ksvla-results-*.jsonl")
	if err != nil {
		return nil, err
	}
	out.Close()
	defer os.Remove(out.Name())

	args := []string{o.Playbook}
	if o.ExtraVars != nil {
		ev, err := json.Marshal(o.ExtraVars)
		if err != nil {
			return nil, fmt.Errorf("encode extra vars: %w", err)
		}
		args = append(args, "-e", string(ev))
	}
	if o.Check {
		args = append(args, "--check")
	}
	if o.Diff {
		args = append(args, "--diff")
	}
	if o.Verbosity > 0 {
		args = append(args, "-"+strings.Repeat("v", o.Verbosity))
	}
	args = append(args, o.Args...)
	cmd := exec.CommandContext(ctx, "ansible-playbook", args...)
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(),
		"ANSIBLE_LIBRARY="+lib,
		"ANSIBLE_COLLECTIONS_PATH="+filepath.Join(lib, "collections"),
		"ANSIBLE_CALLBACK_PLUGINS="+filepath.Join(Root(), "tests", "callback_plugins"),
		"ANSIBLE_CALLBACKS_ENABLED=ksvla_results",
		"KSVLA_RESULTS_FILE="+out.Name(),
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_LOCALHOST_WARNING=false",
		"ANSIBLE_INVENTORY_UNPARSED_WARNING=false",
	)
	cmd.Env = append(cmd.Env, o.Env...)
	// Cancelling ctx kills the whole process group, as an interrupted job
	// loses the controller and the module it was running at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	run := &Run{}
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok && ctx.Err() != nil {
			run.ExitCode = -1 // killed on purpose
		} else if !ok {
			return nil, fmt.Errorf("run ansible-playbook: %w", err)
		} else {
			run.ExitCode = ee.ExitCode()
		}
	}
	run.Output = buf.String()
	f, err := os.Open(out.Name())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		var rec struct {
			TaskResult
			Stats map[string]Stats `json:"stats"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			if ctx.Err() != nil {
				continue // killed mid-write: the last line may be cut
			}
			return nil, fmt.Errorf("read callback results: %w", err)
		}
		if rec.Status == "stats" {
			run.Stats = rec.Stats
			continue
		}
		run.Tasks = append(run.Tasks, rec.TaskResult)
	}
	return run, sc.Err()
}
