package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// freshController is the environment of a controller that never ran the upgrade (a new AWX
// container, a colleague's laptop): an empty HOME, so no ~/.ansible and no controller-side
// record; the only known_hosts is the lab's, which holds the old SVMs' keys, as an admin's does.
func freshController(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	return []string{"HOME=" + home}
}

// The first real run, as the field has it: Windows and Linux Light Agents of 12.x versions under a
// compatibility table, product keys that are not the lab's defaults, new SVMs with the image's
// password and host keys nobody knows, every ansible-playbook run from a fresh controller. The
// first run fails after the deploy (one new SVM refuses SSH); the rerun completes, each old SVM
// removed only once its host's new SVM is activated and has databases, with no protection gap; a
// third run changes nothing and sends no nagent, passwd or KSC task start.
func TestFirstRunFreshControllers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l := startSiteLab(t, "SITE", "Microsoft Windows Server 2022", "Red Hat Enterprise Linux 9")
	v := l.Vars(l.Dir())
	require.NotEqual(t, v.SVMKlconfigPassword, v.SVMImagePassword)
	hosts := v.ESXiHosts
	refused := v.SVMs[hosts[1]]
	l.RefuseSSH(refused, true)
	args := []string{"-e", "upgrade_batch_size=2", "-e", "svm_wait_timeout=3"}

	first := upgrade(t, ctx, l, playtest.Options{Env: freshController(t), Args: args})
	require.NotZero(t, first.ExitCode, "SSH refused on %s: %s", refused, tail(first.Output))
	var failed []string
	for _, r := range first.Task("Configure the new SVM through klconfig (step 2)") {
		if r.Status == "failed" {
			failed = append(failed, r.Host)
			assert.Contains(t, r.Msg(), "first contact with vm "+refused+" at ")
			assert.Contains(t, r.Msg(), "the SVM does not answer over SSH")
		}
	}
	assert.Equal(t, []string{hosts[1]}, failed)
	s := labtest.VSphere(t, l)
	c, err := s.VMContact(ctx, nil, refused)
	require.NoError(t, err)
	assert.Equal(t, vsphere.FirstContactPending, c.Marks[vsphere.MarkFirstContact], "deployed, never contacted")
	assert.Empty(t, c.Marks[vsphere.MarkHostKey])

	l.RefuseSSH(refused, false)
	// --check --diff shows the first contact (trust the key, replace the image's password)
	// without doing it.
	check := upgrade(t, ctx, l, playtest.Options{Env: freshController(t), Args: args, Check: true, Diff: true})
	var planned []string
	for _, r := range check.Task("Configure the new SVM through klconfig (step 2)") {
		if r.Host == hosts[1] {
			require.Equal(t, "ok", r.Status, r.Msg())
			assert.True(t, r.Changed())
			vm, _ := r.Result["vm"].(map[string]any)
			assert.Equal(t, "first_contact", vm["trust"], r.Result)
			assert.Equal(t, []any{"trust the host key presented at first contact and record it on the VM"}, vm["steps"])
			for _, c := range r.Result["commands"].([]any) {
				planned = append(planned, c.(string))
			}
		}
	}
	assert.Contains(t, planned, "passwd klconfig")
	assert.Contains(t, planned, "nagent "+v.KSCNagentAddress+" 13000 14000")
	c, err = s.VMContact(ctx, nil, refused)
	require.NoError(t, err)
	assert.Equal(t, vsphere.FirstContactPending, c.Marks[vsphere.MarkFirstContact], "check mode trusted nothing")
	assert.Empty(t, c.Marks[vsphere.MarkHostKey])
	assert.Zero(t, l.CommandCounts(refused)["passwd"])
	assert.Zero(t, l.CommandCounts(refused)["nagent"])

	second := upgrade(t, ctx, l, playtest.Options{Env: freshController(t), Args: args})
	require.Zero(t, second.ExitCode, tail(second.Output))
	assertUpgraded(t, l)
	assertPreparedBeforeRemoved(t, l, len(hosts))
	assert.Zero(t, l.Status().Gaps)

	counts := map[string]map[string]int{}
	for _, h := range hosts {
		name := v.SVMs[h]
		counts[name] = l.CommandCounts(name)
		assert.Equal(t, 1, counts[name]["passwd"], "%s: the image's password replaced once", name)
		assert.Equal(t, 1, counts[name]["nagent"], "%s: nagent sent once", name)
		c, err := s.VMContact(ctx, nil, name)
		require.NoError(t, err)
		assert.Empty(t, c.Marks[vsphere.MarkFirstContact], name)
		assert.Equal(t, keyLineOf(l, name), c.Marks[vsphere.MarkHostKey], name)
		assert.NotEmpty(t, c.Marks[vsphere.MarkKlconfig], name)
		assert.NotContains(t, c.Marks[vsphere.MarkKlconfig], v.SVMKlconfigPassword)
	}
	taskStarts := l.TaskStarts()

	third := upgrade(t, ctx, l, playtest.Options{Env: freshController(t), Args: args})
	require.Zero(t, third.ExitCode, tail(third.Output))
	assert.Empty(t, changedTasks(third), "a rerun from another fresh controller changes nothing")
	for host, st := range third.Stats {
		assert.Zero(t, st.Changed, host)
	}
	for _, h := range hosts {
		name := v.SVMs[h]
		got := l.CommandCounts(name)
		assert.Equal(t, counts[name]["nagent"], got["nagent"], "%s: no extra nagent (it restarts Network Agent)", name)
		assert.Equal(t, counts[name]["passwd"], got["passwd"], "%s: no extra passwd", name)
	}
	assert.Equal(t, taskStarts, l.TaskStarts(), "no extra KSC task start")
	assert.Zero(t, l.Status().Gaps)
}

// keyLineOf is the host key of the lab's SVM name in authorized_keys form.
func keyLineOf(l *sim.Lab, name string) string {
	sv := l.SVM(name)
	if sv == nil {
		return ""
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sv.HostKey())))
}
