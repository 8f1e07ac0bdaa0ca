package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/ksvla/lightagent/internal/changelog"
	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/modules"
)

// runLint runs tests/lint.sh of the tree at root with the freshly built binary.
func runLint(t *testing.T, root string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("ansible-lint"); err != nil {
		t.Fatalf("ansible-lint is missing: run tests/deps.sh (Debian's ansible-lint): %v", err)
	}
	lib, err := playtest.Modules()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", filepath.Join(root, "tests", "lint.sh"), filepath.Join(lib, "ksvla")).CombinedOutput()
	return string(out), err
}

// `make lint`'s checks pass on the repository.
func TestLint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ansible-lint and ansible-test")
	}
	out, err := runLint(t, playtest.Root())
	require.NoError(t, err, out)
	assert.Contains(t, out, "Passed with production profile")
	assert.Contains(t, out, "lint: clean")
}

// Each of lint.sh's three checks fails on a copy of the tree with one fault planted for it,
// and one run names all three.
func TestLintCatchesViolations(t *testing.T) {
	t.Parallel() // overlaps the other slow end-to-end test: ansible-runner and ansible-lint share nothing
	if testing.Short() {
		t.Skip("runs ansible-lint and ansible-test")
	}
	src, dst := playtest.Root(), t.TempDir()
	for _, p := range []string{"playbooks", "awx", "meta", "plugins", "tests/lint.sh", "tests/stage-collection.sh", "galaxy.yml", "README.md",
		".ansible-lint", "ansible.cfg", "LICENSE", "CHANGELOG.rst", "execution-environment.yml", "docs", "changelogs"} {
		copyPath(t, filepath.Join(src, p), filepath.Join(dst, p))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dst, "library"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dst, "plugins", "modules"), 0o755))
	for _, m := range modules.Registry().Names() {
		copyPath(t, filepath.Join(src, "library", m+".yml"), filepath.Join(dst, "library", m+".yml"))
	}
	// ansible-lint: yaml[brackets].
	plant(t, filepath.Join(dst, "playbooks", "upgrade.yml"), `["{{ inventory_hostname }}"]`, `[ "{{ inventory_hostname }}" ]`)
	// ansible-test sanity line-endings.
	plant(t, filepath.Join(dst, "README.md"), "\n", "\r\n")
	// ansible-doc: a module file ansible-doc cannot read, as a binary in plugins/modules/ was.
	require.NoError(t, os.WriteFile(filepath.Join(dst, "plugins", "modules", "legacy_facts"), []byte("\x7fELF\xc7\x00\x01"), 0o644))

	out, err := runLint(t, dst)
	require.Error(t, err, out)
	assert.Contains(t, out, "yaml[brackets]")
	assert.Contains(t, out, "lint failed: ansible-lint")
	assert.Contains(t, out, "lint failed: ansible-test")
	assert.Contains(t, out, "lint failed: ansible-doc -l")
	assert.NotContains(t, out, "lint failed: ansible-doc ksvla.lightagent.agent_facts")
}

func copyPath(t *testing.T, src, dst string) {
	t.Helper()
	st, err := os.Stat(src)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	if st.IsDir() {
		require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
		return
	}
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, st.Mode().Perm()))
}

// plant replaces the first old in path with new, failing when old is not there.
func plant(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), old)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644))
}

// One version everywhere: galaxy.yml, the binary as the Makefile builds it (`ksvla --version`)
// and a changelog release for it. version_added (in the code and in every generated sidecar)
// names the release that first shipped a module: a release changelogs/changelog.yaml lists, not newer than
// galaxy.yml's. For 0.1.0, which shipped every module, that is galaxy.yml's version itself; the
// rule stays true when 0.2.0 ships with modules added in 0.1.0.
func TestVersionConsistent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bin/ksvla with make")
	}
	root := playtest.Root()
	want := galaxyVersion(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "make", "-C", root, "--no-print-directory", "bin-modules").CombinedOutput()
	require.NoError(t, err, string(out))
	out, err = exec.CommandContext(ctx, filepath.Join(root, "bin", "ksvla"), "--version").Output()
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(string(out)), want, "bin/ksvla --version")

	log, err := changelog.Load(filepath.Join(root, "changelogs"))
	require.NoError(t, err)
	released := map[string]bool{}
	for v, r := range log.Changes.Releases {
		released[v] = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`).MatchString(r.ReleaseDate)
	}
	assert.True(t, released[want], "changelogs/changelog.yaml has no release %s", want)

	shipped := func(what, v string) {
		assert.True(t, released[v], "%s: version_added %q is not a release in changelogs/changelog.yaml", what, v)
		assert.False(t, semverLess(want, v), "%s: version_added %s is newer than galaxy.yml's %s", what, v, want)
	}
	shipped("modules.VersionAdded", modules.VersionAdded)
	for _, m := range modules.Registry().Names() {
		b, err := os.ReadFile(filepath.Join(root, "library", m+".yml"))
		require.NoError(t, err)
		var doc struct {
			Documentation struct {
				VersionAdded string `yaml:"version_added"`
			} `yaml:"DOCUMENTATION"`
		}
		require.NoError(t, yaml.Unmarshal(b, &doc), m)
		shipped("library/"+m+".yml", doc.Documentation.VersionAdded)
	}
}

// semverLess reports a < b for x.y.z versions.
func semverLess(a, b string) bool {
	var x, y [3]int
	fmt.Sscanf(a, "%d.%d.%d", &x[0], &x[1], &x[2])
	fmt.Sscanf(b, "%d.%d.%d", &y[0], &y[1], &y[2])
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}
