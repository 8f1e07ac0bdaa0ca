package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"gopkg.in/yaml.v3"

	"github.com/ksvla/lightagent/internal/playtest"
)

// The README is the front page: what it is, install, requirements, the two
// commands, the real-site quick start and links. Everything longer lives
// in docs/, the module reference in docs/modules and ansible-doc.
func TestReadmeStaysAFrontPage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(playtest.Root(), "README.md"))
	require.NoError(t, err)
	assert.LessOrEqual(t, len(b), 12*1024, "README.md is %d bytes: move detail to docs/", len(b))
	for _, section := range []string{"## Install", "## Requirements", "## Two commands", "## Running against a real vCenter and KSC"} {
		assert.Contains(t, string(b), section)
	}
}

var mdLink = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)

// code is a fenced code block or a code span, where `](` is code (a
// generic call), not a link.
var code = regexp.MustCompile("(?ms)^```.*?^```|`[^`\n]*`")

// Every relative link in the README and docs/ points at a file of the
// repository, so a page moved or renamed breaks the test, not the reader.
func TestDocLinksResolve(t *testing.T) {
	root := playtest.Root()
	pages := []string{filepath.Join(root, "README.md"), filepath.Join(root, "bench", "README.md"), filepath.Join(root, "awx", "README.md")}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	pages = append(pages, more...)
	for _, page := range pages {
		b, err := os.ReadFile(page)
		require.NoError(t, err)
		for _, m := range mdLink.FindAllStringSubmatch(code.ReplaceAllString(string(b), ""), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			_, err := os.Stat(filepath.Join(filepath.Dir(page), target))
			assert.NoError(t, err, "%s links to %s, which does not exist", rel(root, page), target)
		}
	}
}

// Code, playbooks and docs cite the vendor's public pages or files of this
// repository, never a path of a developer's machine or notes outside the
// repository, which no reader has.
func TestNoCitationOutsideTheRepository(t *testing.T) {
	root := playtest.Root()
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	outside := regexp.MustCompile(`(/work/|shared/reference/|\.\./shared/|DESIGN\.md|STYLE\.md)`)
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch filepath.Ext(f) {
		case ".go", ".yml", ".yaml", ".md", ".sh", ".j2", ".cfg":
		default:
			continue
		}
		if f == "tests/docs_test.go" {
			continue // names the patterns it looks for
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue // deleted in the work tree
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := outside.FindString(line); m != "" {
				t.Errorf("%s:%d cites %q, which is outside the repository: cite the public source instead", f, i+1, m)
			}
		}
	}
}

// docs/vcenter-role.yml is the role an admin creates for the automation
// account: every privilege id in it must be one vCenter defines, or
// creating the role fails at the site. The simulator's privilege list is
// captured from a real vCenter (govmomi's esx.RoleList).
func TestVCenterRolePrivilegesExist(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(playtest.Root(), "docs", "vcenter-role.yml"))
	require.NoError(t, err)
	var plays []struct {
		Vars struct {
			Privileges []string `yaml:"ksvla_vcenter_privileges"`
		} `yaml:"vars"`
	}
	require.NoError(t, yaml.Unmarshal(b, &plays))
	require.Len(t, plays, 1)
	want := plays[0].Vars.Privileges
	require.NotEmpty(t, want)

	simulator.Test(func(ctx context.Context, c *vim25.Client) {
		roles, err := object.NewAuthorizationManager(c).RoleList(ctx)
		require.NoError(t, err)
		admin := roles.ByName("Admin")
		require.NotNil(t, admin)
		known := map[string]bool{}
		for _, p := range admin.Privilege {
			known[p] = true
		}
		for _, p := range want {
			assert.True(t, known[p], "docs/vcenter-role.yml names privilege %s, which vCenter does not define", p)
		}
	})
}

func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return r
}
