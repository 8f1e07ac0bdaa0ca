//go:build soak

package tests

// Kill at every step: playbooks/upgrade.yml on a small lab is killed
// (ansible-playbook and the module it runs, the whole process group) at
// each task boundary and in the middle of an image upload, then rerun;
// the rerun must converge. Run by `make soak`, not by `make test`.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/internal/vsphere"
)

var soakLab = sim.Config{Hosts: 2, VMsPerHost: 1}

// killPoint says when to kill a run.
type killPoint struct {
	name string
	cfg  sim.Config
	// records: kill once the run has reported this many task results,
	// then wait delay (0 = at the boundary, >0 = inside the next task).
	records int
	delay   time.Duration
	// upload: kill while a new SVM's import is incomplete in vCenter.
	upload bool
}

// upgradeRun runs upgrade.yml on l with its task results written to file
// (so a watcher can follow them while it runs).
func upgradeRun(ctx context.Context, l *sim.Lab, results string) (*playtest.Run, error) {
	return playtest.Playbook(ctx, playtest.Options{Playbook: "playbooks/upgrade.yml",
		Env:  []string{"KSVLA_RESULTS_FILE=" + results},
		Args: append([]string{"-e", "@" + filepath.Join(l.Dir(), "vars.yml"), "-e", "upgrade_batch_size=1"}, upgradeArgs...)})
}

// resultLines reads the task results written so far: "task|host" each.
func resultLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		task := between(line, `"task": "`, `"`)
		host := between(line, `"host": "`, `"`)
		if task != "" {
			out = append(out, task+"|"+host)
		}
	}
	return out
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

// boundaries returns the kill points of a reference run: one per task
// (per batch), when its first result arrives, i.e. as the next task
// starts; every other one 150 ms later, to land inside that next task.
func boundaries(lines []string) []killPoint {
	var out []killPoint
	prev := ""
	for i, l := range lines {
		if l == prev {
			continue
		}
		prev = l
		task, host, _ := strings.Cut(l, "|")
		kp := killPoint{name: fmt.Sprintf("after %q on %s", task, host), cfg: soakLab, records: i + 1}
		if len(out)%2 == 1 {
			kp.name, kp.delay = kp.name+" +150ms", 150*time.Millisecond
		}
		out = append(out, kp)
	}
	return out
}

// watchKill cancels kill when the kill point is reached.
func watchKill(ctx context.Context, l *sim.Lab, s *vsphere.Session, kp killPoint, results string, kill context.CancelFunc) {
	defer kill()
	v := l.Vars(l.Dir())
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if kp.upload {
			vms, err := s.Inventory(ctx, vsphere.Scope{Datacenter: v.Datacenter, Details: true})
			if err != nil {
				continue
			}
			for _, vm := range vms {
				if vm.ImportIncomplete {
					return
				}
			}
			continue
		}
		if len(resultLines(results)) >= kp.records {
			time.Sleep(kp.delay)
			return
		}
	}
}

// converged lists what is wrong with the lab after the rerun; empty means
// it converged.
func converged(ctx context.Context, l *sim.Lab, s *vsphere.Session) []string {
	var bad []string
	v := l.Vars(l.Dir())
	if err := l.Sync(ctx); err != nil {
		return []string{err.Error()}
	}
	for _, h := range l.Status().Hosts {
		if len(h.SVMs) != 1 {
			bad = append(bad, fmt.Sprintf("%s has %d SVMs: %+v", h.Name, len(h.SVMs), h.SVMs))
		}
		for _, sv := range h.SVMs {
			if sv.Version != v.NewVersion || sv.Power != "on" {
				bad = append(bad, fmt.Sprintf("%s: SVM %s %s %s", h.Name, sv.Name, sv.Version, sv.Power))
			}
			if sv.Power == "on" && !sv.InKSC {
				bad = append(bad, fmt.Sprintf("running SVM %s has no KSC record", sv.Name))
			}
		}
		for ver := range h.Agents {
			if !slices.Contains(v.AgentVersions(true), ver) {
				bad = append(bad, fmt.Sprintf("%s: agents still on %s", h.Name, ver))
			}
		}
		if h.Unprotected > 0 {
			bad = append(bad, fmt.Sprintf("%s: %d unprotected VMs", h.Name, h.Unprotected))
		}
	}
	for _, g := range l.Gaps() {
		bad = append(bad, fmt.Sprintf("protection gap: %+v", g))
	}
	for _, h := range l.KSC().Hosts() {
		for _, p := range h.Products {
			if p.Key == v.PSProductKey && p.Version != v.NewVersion {
				bad = append(bad, "old SVM record left in KSC: "+h.DisplayName)
			}
		}
	}
	for _, h := range l.VCenter().Inventory().Hosts {
		for _, name := range []string{v.SVMs[h.Name], h.OldSVM} {
			ds, err := s.Datastore(ctx, nil, v.LocalDatastores[h.Name])
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			lo, err := s.FindLeftover(ctx, nil, name, ds)
			if err != nil {
				bad = append(bad, err.Error())
			} else if !lo.Empty() {
				bad = append(bad, fmt.Sprintf("leftover of %s: %+v", name, lo))
			}
		}
	}
	return bad
}

// registeredRunning lists the running SVMs KSC knows.
func registeredRunning(l *sim.Lab) map[string]bool {
	out := map[string]bool{}
	for _, h := range l.Status().Hosts {
		for _, s := range h.SVMs {
			if s.Power == "on" && s.InKSC {
				out[s.Name] = true
			}
		}
	}
	return out
}

func TestSoakKillAtEveryStep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()

	// A reference run gives the task list.
	ref := labtest.Start(t, soakLab)
	refResults := filepath.Join(t.TempDir(), "ref.jsonl")
	run, err := upgradeRun(ctx, ref, refResults)
	require.NoError(t, err)
	require.Zero(t, run.ExitCode, tail(run.Output))
	points := boundaries(resultLines(refResults))
	ref.Close()
	// Inside the longest task: a larger image whose upload takes a while.
	big := soakLab
	big.ImageBytes = 64 << 20
	points = append(points, killPoint{name: "mid-upload of the first SVM", cfg: big, upload: true})
	t.Logf("%d kill points", len(points))

	var failed []string
	for i, kp := range points {
		ok := t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			l := labtest.Start(t, kp.cfg)
			s := labtest.VSphere(t, l)
			results := filepath.Join(t.TempDir(), "results.jsonl")
			before := registeredRunning(l)

			killCtx, kill := context.WithCancel(ctx)
			go watchKill(killCtx, l, s, kp, results, kill)
			killed, err := upgradeRun(killCtx, l, results)
			kill()
			require.NoError(t, err)
			require.NoError(t, l.Sync(ctx))
			for name := range before {
				if !registeredRunning(l)[name] && svmRunning(l, name) {
					t.Errorf("%s: KSC record of running SVM %s lost", kp.name, name)
				}
			}
			t.Logf("%s: killed run exit %d after %d results", kp.name, killed.ExitCode, len(resultLines(results)))

			rerun, err := upgradeRun(ctx, l, filepath.Join(t.TempDir(), "rerun.jsonl"))
			require.NoError(t, err)
			if rerun.ExitCode != 0 {
				t.Errorf("%s: rerun failed (exit %d):\n%s", kp.name, rerun.ExitCode, tail(rerun.Output))
			}
			for _, p := range converged(ctx, l, s) {
				t.Errorf("%s: %s", kp.name, p)
			}
		})
		if !ok {
			failed = append(failed, kp.name)
		}
	}
	fmt.Printf("converged %d/%d kill points\n", len(points)-len(failed), len(points))
	if len(failed) > 0 {
		t.Errorf("did not converge: %s", strings.Join(failed, "; "))
	}
}

func svmRunning(l *sim.Lab, name string) bool {
	for _, s := range svmsNamed(l, name) {
		if s.Power == "on" {
			return true
		}
	}
	return false
}
