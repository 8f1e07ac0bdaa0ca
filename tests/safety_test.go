package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// One KSC serves two sites; the upgrade runs on the first. The second
// site's running old SVM keeps its KSC record through the whole upgrade,
// while a record left by an interrupted run (no VM anywhere) is purged by
// the Finish play, which says why. The diff of that purge prints through
// the default callback without a callback failure.
func TestUpgradeKeepsOtherDatacenterRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1, SecondDatacenter: true})
	v := l.Vars(l.Dir())
	k := l.KSC()
	const dc2, leftover = "svm-esxi-dc2-01-6.1", "svm-esxi-07-6.1"
	require.Eventually(t, func() bool { return len(k.FindByName(dc2)) == 1 }, 10*time.Second, 20*time.Millisecond)
	k.UpsertHost(kscsim.Host{DisplayName: leftover, IP: "10.9.9.7", Products: []kscsim.Product{
		{Key: v.PSProductKey, Version: v.OldVersion, DisplayName: v.PSProductName, ProdVersion: v.OldVersion}}})

	run := upgrade(t, ctx, l, playtest.Options{Diff: true})
	require.Zero(t, run.ExitCode, run.Output)
	assert.NotContains(t, run.Output, "[WARNING]: KSC task", "the agent update's failures outside the batch are expected, not warned about")
	assert.NotContains(t, run.Output, "Failure using method", "a diff the default callback cannot print")
	assert.Len(t, k.FindByName(dc2), 1, "the second site's running SVM lost its KSC record")
	assert.Empty(t, k.FindByName(leftover), "a record proven gone stays")
	purge := run.Task("Delete KSC records of old SVMs left by an interrupted run")
	require.Len(t, purge, 1)
	removed, _ := purge[0].Result["removed"].([]any)
	require.Len(t, removed, 1, purge[0].Result)
	assert.Equal(t, leftover, removed[0].(map[string]any)["name"])
	assert.Equal(t, "no VM named svm-esxi-07-6.1 (name or guest host name) in datacenters DC1, DC2", removed[0].(map[string]any)["proof"])
	kept, _ := purge[0].Result["kept"].([]any)
	require.Len(t, kept, 1, purge[0].Result)
	assert.Equal(t, dc2, kept[0].(map[string]any)["name"])
	assert.Contains(t, run.Output, "KSC record svm-esxi-07-6.1 (id ", "the purge's diff is printed")
	for _, h := range l.Status().Hosts {
		want := v.NewVersion
		if h.Name == "esxi-dc2-01.lab.local" {
			want = v.OldVersion // outside the upgrade
		}
		require.Len(t, h.SVMs, 1, h.Name)
		assert.Equal(t, want, h.SVMs[0].Version, h.Name)
	}
	assert.Empty(t, l.Gaps())
}

// addSVM imports the lab's old image onto host as name, marked as an SVM
// of version, powered off: an SVM the upgrade does not expect.
func addSVM(t *testing.T, ctx context.Context, l *sim.Lab, host, name, version string) {
	t.Helper()
	v := l.Vars(l.Dir())
	s := labtest.VSphere(t, l)
	res, err := s.Import(ctx, vsphere.ImportSpec{Source: v.OldImage.Path, Name: name, Datacenter: v.Datacenter,
		Host: host, Datastore: v.LocalDatastores[host]})
	require.NoError(t, err)
	require.NoError(t, s.SetMarks(ctx, res.VM, map[string]string{vsphere.MarkRole: vsphere.RoleSVM, vsphere.MarkVersion: version,
		vsphere.MarkDeployedBy: vsphere.DeployedBy}))
}

// rollback runs rollback.yml against the lab.
func rollback(t *testing.T, ctx context.Context, l *sim.Lab) *playtest.Run {
	t.Helper()
	run, err := playtest.Playbook(ctx, playtest.Options{Playbook: "playbooks/rollback.yml",
		Args: []string{"-e", "@" + filepath.Join(l.Dir(), "vars.yml")}})
	require.NoError(t, err)
	return run
}

// rollback.yml after an upgrade interrupted before the Light Agent
// update: the new SVMs go, the old ones serve, no gap. Then the same with
// the Light Agent update task running in KSC meanwhile, landed by the
// lab's KSC hook after rollback's own check (its first KSC session), as
// the removal starts (the second): the removal's gates catch it, the run
// fails with svm_remove's refusal and no agent loses its SVM. (The module
// test TestAbsentRechecksGatesAtDeletion lands it between the removal's
// two reads.)
func TestRollbackGated(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, race := range []bool{false, true} {
		t.Run(fmt.Sprintf("agent update racing=%v", race), func(t *testing.T) {
			var logins atomic.Int64
			var armed atomic.Bool
			var lab atomic.Pointer[sim.Lab]
			hookErr := make(chan error, 1)
			l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: 2, KSCHook: func(method string) {
				if race && armed.Load() && method == "Session.StartSession" && logins.Add(1) == 2 {
					hookErr <- lab.Load().UpdateAgentsNow(context.Background())
				}
			}})
			lab.Store(l)
			host := l.Vars(l.Dir()).ESXiHosts[0]
			newSVM := labtest.DeployNewSVM(t, l, labtest.VSphere(t, l), host)
			labtest.PrepareSVMs(t, l) // agents connect only to an activated SVM

			armed.Store(true)
			run := rollback(t, ctx, l)
			if !race {
				require.Zero(t, run.ExitCode, run.Output)
				st := l.Status()
				require.Len(t, st.Hosts[0].SVMs, 1)
				assert.Equal(t, l.Vars(l.Dir()).OldVersion, st.Hosts[0].SVMs[0].Version)
				assert.Empty(t, l.KSC().FindByName(newSVM))
				assert.Empty(t, l.Gaps())
				return
			}
			select {
			case err := <-hookErr:
				require.NoError(t, err)
			default:
				t.Fatalf("the agent update never ran: %s", tail(run.Output))
			}
			require.NotZero(t, run.ExitCode, "rollback removed the SVM the agents had moved to: %s", tail(run.Output))
			assert.Contains(t, run.Output, "refusing to remove any SVM: 1 selected SVM(s) blocked by safety gates: "+newSVM+" on "+host)
			assert.Len(t, l.Status().Hosts[0].SVMs, 2, "nothing removed")
			require.NoError(t, l.Sync(ctx))
			assert.Empty(t, l.Gaps())
		})
	}
}

// Input that cannot be misread: a version that is not one fails
// pre-flight naming the variable, and an old version no host carries (the
// 6.1 for 6.1.0.100 typo) fails naming every host; nothing changes.
func TestUpgradeRefusesMisreadVersions(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1})
	before := l.Status()
	for _, tc := range []struct {
		vars string
		want []string
	}{
		{`{"svm_old_version": "6.1"}`, []string{
			"esxi-01.lab.local has no SVM of 6.1 and none of 6.2.0.200 (it carries: 6.1.0.100): wrong svm_old_version, or not a KSVLA host?",
			"esxi-02.lab.local has no SVM of 6.1 and none of 6.2.0.200 (it carries: 6.1.0.100): wrong svm_old_version, or not a KSVLA host?"}},
		{`{"svm_new_version": "latest"}`, []string{`svm_new_version must be a version of two to four dotted numbers such as "6.2.0.200" (a string: quote it in YAML), got "latest"`}},
		{`{"svm_new_version": "v6.2.0.200"}`, []string{`got "v6.2.0.200"`}},
		{`{"svm_new_version": "6.2.0.200 "}`, []string{`got "6.2.0.200 "`}},
		{`{"svm_old_version": 6.1}`, []string{`svm_old_version must be a version of two to four dotted numbers such as "6.2.0.200" (a string: quote it in YAML), got 6.1`}},
	} {
		run := upgrade(t, ctx, l, playtest.Options{Args: []string{"-e", tc.vars}})
		require.NotZero(t, run.ExitCode, "%s: %s", tc.vars, tail(run.Output))
		var msgs []string
		for _, r := range run.Tasks {
			if strings.Contains(r.Status, "failed") {
				msgs = append(msgs, r.Msg())
			}
		}
		for _, w := range tc.want {
			assert.Contains(t, strings.Join(msgs, "\n"), w, tc.vars)
		}
		assert.NotContains(t, run.Output, "Deploy the new SVM", "%s: pre-flight let it through", tc.vars)
	}
	assert.Equal(t, before, l.Status(), "a refused run changed the lab")

	// Every host has its new SVM already, beside an old one of another
	// version than the one named: the run would change nothing, and says so.
	for _, h := range l.Vars(l.Dir()).ESXiHosts {
		labtest.DeployNewSVM(t, l, labtest.VSphere(t, l), h)
	}
	run := upgrade(t, ctx, l, playtest.Options{Args: []string{"-e", `{"svm_old_version": "6.1.0.99"}`}})
	require.NotZero(t, run.ExitCode, tail(run.Output))
	nothing := run.Task("The run has something to do, or nothing is left to do")
	require.Len(t, nothing, 1, tail(run.Output))
	assert.Equal(t, "no target host carries an SVM of 6.1.0.99, but SVMs of 6.1.0.100 run there: wrong svm_old_version? The run would change nothing.", nothing[0].Msg())

	// A second SVM of the old version on a host: which one to keep is the
	// operator's call, pre-flight names them.
	v := l.Vars(l.Dir())
	host := v.ESXiHosts[0]
	addSVM(t, ctx, l, host, "svm-esxi-01-6.1-b", v.OldVersion)
	run = upgrade(t, ctx, l, playtest.Options{})
	require.NotZero(t, run.ExitCode, tail(run.Output))
	var msgs []string
	for _, r := range run.Task("Every target host carries an SVM of the old or the new version, and at most one old") {
		msgs = append(msgs, r.Msg())
	}
	assert.Contains(t, msgs, host+" carries 2 SVMs of "+v.OldVersion+" (svm-esxi-01-6.1, svm-esxi-01-6.1-b): remove all but one first")
}

// An SVM of a third version the run does not remove (here 6.0, powered
// off) is still on an upgraded host at the end: the Finish play fails
// naming it instead of reporting the host done.
func TestUpgradeFinishRefusesOtherVersions(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: 1})
	v := l.Vars(l.Dir())
	host := v.ESXiHosts[0]
	addSVM(t, ctx, l, host, "svm-esxi-01-6.0", "6.0.0.1")

	run := upgrade(t, ctx, l, playtest.Options{})
	require.NotZero(t, run.ExitCode, tail(run.Output))
	check := run.Task("Every upgraded hypervisor carries SVMs of the new version only")
	require.NotEmpty(t, check, tail(run.Output))
	var msgs []string
	for _, r := range check {
		msgs = append(msgs, r.Msg())
	}
	assert.Contains(t, msgs, host+" still carries SVMs of another version than "+v.NewVersion+": svm-esxi-01-6.0")
	assert.Empty(t, l.Gaps())
}

// Two upgrade.yml runs started together on one lab (an AWX user who
// launches twice): one takes the lock and upgrades, the other fails in
// pre-flight naming the holder, before any change. The lab ends with one
// SVM per host and no gap.
func TestUpgradeOneRunAtATime(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1})
	runs := make([]*playtest.Run, 2)
	done := make(chan int, 2)
	for i := range runs {
		go func() {
			run, err := playtest.Playbook(ctx, playtest.Options{Playbook: "playbooks/upgrade.yml",
				Args: append([]string{"-e", "@" + filepath.Join(l.Dir(), "vars.yml")}, upgradeArgs...)})
			assert.NoError(t, err)
			runs[i] = run
			done <- i
		}()
	}
	<-done
	<-done
	require.NotNil(t, runs[0])
	require.NotNil(t, runs[1])
	ok, refused := runs[0], runs[1]
	if ok.ExitCode != 0 {
		ok, refused = refused, ok
	}
	require.Zero(t, ok.ExitCode, tail(ok.Output))
	require.NotZero(t, refused.ExitCode, "both runs went on: %s", tail(refused.Output))
	lock := refused.Task("Take the upgrade lock of this run's hypervisors (one run at a time, whatever the controller)")
	require.Len(t, lock, 1, tail(refused.Output))
	assert.Regexp(t, `^another upgrade run (holds the lock of datacenter DC1|took the lock of datacenter DC1 at the same moment): \S+ \(run [^,]+, holding esxi-01.lab.local, esxi-02.lab.local\) since 20`, lock[0].Msg())
	assert.Empty(t, refused.Task("Deploy the new SVM (step 1)"), "the refused run changed nothing")
	v := l.Vars(l.Dir())
	for _, h := range l.Status().Hosts {
		require.Len(t, h.SVMs, 1, h.Name)
		assert.Equal(t, v.NewVersion, h.SVMs[0].Version, h.Name)
	}
	assert.Empty(t, l.Gaps())
}

// stepTask is "Configure ... (step 2)" or "Plan: configure ... (step 2)":
// a procedure step, which the plan may show with a task of its own.
var stepTask = regexp.MustCompile(`^(?:Plan: )?(\w+) .*\(step (\d)`)

// changes lists "host: task" for every changed result of a run; a step is
// named by its verb and number, so a plan task and the step it plans match.
func changes(run *playtest.Run) []string {
	var out []string
	for _, r := range run.Tasks {
		if !r.Changed() {
			continue
		}
		name := r.Task
		if m := stepTask.FindStringSubmatch(name); m != nil {
			name = strings.ToLower(m[1]) + " (step " + m[2] + ")"
		}
		out = append(out, r.Host+": "+name)
	}
	return out
}

// perHost keeps each hypervisor's changes in order. Hypervisors move on
// independently once deployed (play B runs with strategy free), so the
// order between two hosts' removals is not part of the plan.
func perHost(changes []string) map[string][]string {
	out := map[string][]string{}
	for _, c := range changes {
		host, _, _ := strings.Cut(c, ": ")
		out[host] = append(out[host], c)
	}
	return out
}

// --check --diff lists every change a real run makes, per hypervisor and
// in order (deploy, klconfig, KSC tasks, the old SVM's removal with the
// gate's verdict, the KSC record), and writes it as Markdown; the real
// run right after makes exactly those changes.
func TestUpgradePlanIsTruthful(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1})
	before := l.Status()
	planFile := filepath.Join(t.TempDir(), "plan.md")

	check := upgrade(t, ctx, l, playtest.Options{Check: true, Diff: true, Args: []string{"-e", "upgrade_plan_file=" + planFile}})
	require.Zero(t, check.ExitCode, check.Output)
	assert.Equal(t, before, l.Status(), "--check changed the lab")
	run := upgrade(t, ctx, l, playtest.Options{})
	require.Zero(t, run.ExitCode, run.Output)
	assert.Equal(t, perHost(changes(run)), perHost(changes(check)), "the real run made other changes than the plan listed")

	raw, err := os.ReadFile(planFile)
	require.NoError(t, err)
	plan := string(raw)
	for _, want := range []string{
		"## esxi-01.lab.local",
		"1. Deploy **svm-esxi-01-6.2** on esxi-01.lab.local",
		"2. would configure svm-esxi-01-6.2 through klconfig at the address vCenter reports once it runs: Administration Server ",
		"KSC task Update Light Agent would be started",
		"would remove svm-esxi-01-6.1 once the new SVM runs and 1 Light Agent(s) on esxi-01.lab.local are updated (vm-esxi-01-001), " +
			"and the 1 Light Agent(s) not updated that DRS may move here from other hosts of its cluster",
		"would delete the KSC record of svm-esxi-01-6.1 once it is removed",
		"## esxi-02.lab.local",
	} {
		assert.Contains(t, plan, want)
	}
	assert.Less(t, strings.Index(plan, "would remove svm-esxi-01-6.1"), strings.Index(plan, "## esxi-02.lab.local"))
}
