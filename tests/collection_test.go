package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The built collection tarball installs with ansible-galaxy, stays under
// Galaxy's 20 MB limit, keeps one binary with a link per module, renders
// its docs with ansible-doc and runs a module by FQCN.
func TestCollectionBuildInstallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the collection")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := playtest.Root()
	out, err := exec.CommandContext(ctx, "make", "-C", root, "collection").CombinedOutput()
	require.NoError(t, err, string(out))

	tarballs, _ := filepath.Glob(filepath.Join(root, "dist", "ksvla-lightagent-*.tar.gz"))
	require.Len(t, tarballs, 1)
	st, err := os.Stat(tarballs[0])
	require.NoError(t, err)
	assert.Less(t, st.Size(), int64(20<<20), "Galaxy refuses artifacts over 20 MB")
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
	mods := filepath.Join(dest, "ansible_collections", "ksvla", "lightagent", "plugins", "modules")
	for _, m := range []string{"ksc_purge", "ksc_task", "svm_deploy", "svm_klconfig", "svm_remove"} {
		target, err := os.Readlink(filepath.Join(mods, m))
		require.NoError(t, err, "%s must be a link to the one binary", m)
		assert.Equal(t, "agent_facts", target)
	}

	env := append(os.Environ(), "ANSIBLE_COLLECTIONS_PATH="+dest, "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCALHOST_WARNING=false",
		"ANSIBLE_INVENTORY_UNPARSED_WARNING=false")
	doc := exec.CommandContext(ctx, "ansible-doc", "ksvla.lightagent.svm_deploy")
	doc.Env, doc.Dir = env, dest
	out, err = doc.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "SVM_DEPLOY")

	// An ad-hoc call by FQCN reaches the module: its own validation answers.
	adhoc := exec.CommandContext(ctx, "ansible", "localhost", "-m", "ksvla.lightagent.agent_facts", "-a", "target_version=6.2.0.200 no_such_option=1")
	adhoc.Env, adhoc.Dir = env, dest
	out, _ = adhoc.CombinedOutput()
	assert.Contains(t, string(out), "Unsupported parameters for (ksvla.lightagent.agent_facts) module: no_such_option", string(out))
	assert.False(t, strings.Contains(string(out), "MODULE FAILURE"), string(out))
}
