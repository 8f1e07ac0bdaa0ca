package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawMarkup is ansible-core 2.15's semantic markup, which 2.14 (the oldest
// core the collection supports) prints as it is.
var rawMarkup = regexp.MustCompile(`\b(O|V|RV|E)\([^)]*\)`)

// The built collection tarball, installed with ansible-galaxy into an empty
// collections path as a user would: it stays under Galaxy's 20 MB limit,
// carries a module binary per controller platform, lists and renders its
// docs with ansible-doc, picks the binary of the machine a module runs on
// (the linux/arm64 one is run under qemu-user), and upgrades a lab.
func TestCollectionBuildInstallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the collection")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root := playtest.Root()
	out, err := exec.CommandContext(ctx, "make", "-C", root, "collection").CombinedOutput()
	require.NoError(t, err, string(out))

	tarballs, _ := filepath.Glob(filepath.Join(root, "dist", "ksvla-lightagent-*.tar.gz"))
	require.Len(t, tarballs, 1)
	st, err := os.Stat(tarballs[0])
	require.NoError(t, err)
	// Galaxy refuses artifacts over 20 MB: read in decimal, the stricter way.
	assert.Less(t, st.Size(), int64(20_000_000), "Galaxy refuses artifacts over 20 MB")
	stable, err := os.ReadFile(filepath.Join(root, "dist", "ksvla-lightagent.tar.gz"))
	require.NoError(t, err, "execution-environment.yml installs dist/ksvla-lightagent.tar.gz")
	versioned, err := os.ReadFile(tarballs[0])
	require.NoError(t, err)
	assert.Equal(t, versioned, stable, "the version-less copy is the tarball just built")
	listing, err := exec.CommandContext(ctx, "tar", "-tzf", tarballs[0]).Output()
	require.NoError(t, err)
	for _, f := range []string{"LICENSE", "CHANGELOG.rst", "changelogs/changelog.yaml", "execution-environment.yml", "awx/README.md", "docs/requirements.md", "docs/modules/svm_deploy.md"} {
		assert.Contains(t, strings.Split(string(listing), "\n"), f, "the tarball carries %s", f)
	}

	dest := t.TempDir()
	out, err = exec.CommandContext(ctx, "ansible-galaxy", "collection", "install", "-p", dest, tarballs[0]).CombinedOutput()
	require.NoError(t, err, string(out))
	coll := filepath.Join(dest, "ansible_collections", "ksvla", "lightagent")
	for _, p := range []string{"linux_amd64", "linux_arm64", "darwin_arm64"} {
		fi, err := os.Stat(filepath.Join(coll, "binaries", "ksvla_"+p))
		require.NoError(t, err, "the tarball carries the %s binary", p)
		assert.NotZero(t, fi.Mode()&0o111, "ksvla_%s is executable", p)
	}

	env := append(os.Environ(), "ANSIBLE_COLLECTIONS_PATH="+dest, "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCALHOST_WARNING=false",
		"ANSIBLE_INVENTORY_UNPARSED_WARNING=false")
	run := func(env []string, name string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env, cmd.Dir = env, dest
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	names, err := exec.Command(filepath.Join(root, "bin", "ksvla"), "list").Output()
	require.NoError(t, err)
	modules := strings.Fields(string(names))
	require.NotEmpty(t, modules)

	t.Run("ansible-doc lists and renders every module", func(t *testing.T) {
		list, err := run(env, "ansible-doc", "-t", "module", "-l", "ksvla.lightagent")
		require.NoError(t, err, list)
		assert.NotContains(t, list, "formatting error")
		for _, m := range modules {
			assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(m)+`\s+\S+`, list, "%s listed with its short description", m)
			doc, err := run(env, "ansible-doc", m)
			require.NoError(t, err, doc)
			assert.Contains(t, doc, strings.ToUpper(m[strings.LastIndex(m, ".")+1:]))
			assert.Empty(t, rawMarkup.FindAllString(doc, -1), "%s shows markup ansible-core 2.14 does not render", m)
		}
	})

	// An ad-hoc call by FQCN reaches the module through the action plugin:
	// the binary's own validation answers.
	adhoc := []string{"localhost", "-vvv", "-m", "ksvla.lightagent.agent_facts", "-a", "target_version=6.2.0.200 no_such_option=1"}
	const validated = "Unsupported parameters for (ksvla.lightagent.agent_facts) module: no_such_option"
	t.Run("the host's binary runs", func(t *testing.T) {
		out, _ := run(env, "ansible", adhoc...)
		assert.Contains(t, out, validated, out)
		assert.Contains(t, out, "ksvla_linux_amd64", "the dispatch picked this machine's binary")
		assert.NotContains(t, out, "MODULE FAILURE", out)
	})

	t.Run("the linux/arm64 binary runs under qemu-user", func(t *testing.T) {
		qemu, err := exec.LookPath("qemu-aarch64")
		if err != nil {
			t.Fatal("qemu-aarch64 missing: run tests/deps.sh")
		}
		arm := append(env[:len(env):len(env)], "KSVLA_TEST_UNAME=Linux aarch64")
		// Without the emulator the arm64 binary cannot run here: proof the dispatch chose it.
		out, _ := run(arm, "ansible", adhoc...)
		assert.Contains(t, out, "ksvla_linux_arm64", out)
		assert.NotContains(t, out, validated, "an arm64 binary ran natively on amd64?")
		out, _ = run(append(arm, "KSVLA_TEST_EXEC_WRAPPER="+qemu), "ansible", adhoc...)
		assert.Contains(t, out, "ksvla_linux_arm64", out)
		assert.Contains(t, out, validated, out)
	})

	t.Run("a Mac's uname picks the darwin/arm64 binary", func(t *testing.T) {
		out, _ := run(append(env[:len(env):len(env)], "KSVLA_TEST_UNAME=Darwin arm64"), "ansible", adhoc...)
		assert.Contains(t, out, "Using module file "+filepath.Join(coll, "binaries", "ksvla_darwin_arm64"), out)
		assert.NotContains(t, out, validated, "a darwin binary ran on linux?")
	})

	t.Run("an unsupported platform fails in one line naming it and the build", func(t *testing.T) {
		out, _ := run(append(env[:len(env):len(env)], "KSVLA_TEST_UNAME=FreeBSD riscv64"), "ansible",
			"localhost", "-m", "ksvla.lightagent.agent_facts", "-a", "target_version=6.2.0.200")
		assert.Regexp(t, `"msg": "ksvla.lightagent has no module binary for freebsd/riscv64: build one .*GOOS=freebsd GOARCH=riscv64 go build[^"\n]*ksvla_freebsd_riscv64[^"\n]*"`, out)
		assert.NotContains(t, out, "Traceback")
		assert.NotContains(t, out, "exception")
	})

	t.Run("the installed collection upgrades a lab", func(t *testing.T) {
		l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 2})
		// status.yml with the arm64 binary under qemu: the emulated binary does the real vCenter
		// and KSC conversation through the dispatch, not only its argument check.
		status, err := playtest.Playbook(ctx, playtest.Options{Playbook: "ksvla.lightagent.status",
			Env:  []string{"ANSIBLE_COLLECTIONS_PATH=" + dest, "KSVLA_TEST_UNAME=Linux aarch64", "KSVLA_TEST_EXEC_WRAPPER=qemu-aarch64"},
			Args: []string{"-e", "@" + filepath.Join(l.Dir(), "vars.yml"), "-e", "status_html=" + filepath.Join(t.TempDir(), "s.html")}})
		require.NoError(t, err)
		require.Zero(t, status.ExitCode, status.Output)
		facts := status.Task("Read the fleet")
		require.Len(t, facts, 1)
		assert.Len(t, facts[0].Result["ansible_facts"].(map[string]any)["ksvla"].(map[string]any)["hypervisors"], 2)

		// Check mode and module_defaults groups through the action plugin: the plan, no change.
		// The hypervisors come from the installed collection's inventory plugin.
		opts := playtest.Options{Playbook: "ksvla.lightagent.upgrade", Env: []string{"ANSIBLE_COLLECTIONS_PATH=" + dest},
			Args: append([]string{"-i", filepath.Join(root, "playbooks", "inventory", "localhost.yml"), "-i", hypervisorsInventory(t, l.Vars(l.Dir())),
				"-e", "@" + filepath.Join(l.Dir(), "vars.yml")}, upgradeArgs...)}
		before := l.Status()
		check := opts
		check.Check = true
		plan, err := playtest.Playbook(ctx, check)
		require.NoError(t, err)
		require.Zero(t, plan.ExitCode, plan.Output)
		assert.Contains(t, changedTasks(plan), "Deploy the new SVM (step 1)")
		assert.Equal(t, before, l.Status(), "--check changed the lab")

		up, err := playtest.Playbook(ctx, opts)
		require.NoError(t, err)
		require.Zero(t, up.ExitCode, up.Output)
		for _, q := range up.Task("Queue the hypervisors of esxi_hosts (the inventory has no ksvla_hypervisors)") {
			assert.Equal(t, "skipped", q.Status, "the inventory, not esxi_hosts, gave the hypervisors")
		}
		assert.Len(t, up.Task("Deploy the new SVM (step 1)"), 2)
		assertUpgraded(t, l)
	})
}
