package tests

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ksvla/lightagent/internal/playtest"
)

// Every change to what users run (modules/, playbooks/) is followed, in the
// same commit or a later one, by a changelog fragment (changelogs/fragments/)
// or a release (changelogs/changelog.yaml), so no landing goes out without
// a line in the changelog. A commit that changes nothing a user sees says
// "[no changelog]" in its message. History before the changelog moved to
// the antsibull-changelog layout is not checked.
func TestChangesCarryAFragment(t *testing.T) {
	root := playtest.Root()
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
		return strings.TrimSpace(string(out)), err
	}
	if shallow, err := git("rev-parse", "--is-shallow-repository"); err != nil || shallow == "true" {
		t.Skipf("needs a full git clone (shallow=%q, err=%v)", shallow, err)
	}
	added, err := git("log", "--diff-filter=A", "--format=%H", "--", "changelogs/config.yaml")
	if err != nil || added == "" {
		t.Skip("changelogs/config.yaml is not committed yet")
	}
	lines := strings.Split(added, "\n")
	base := lines[len(lines)-1]
	// Parents before children, so a branch's commits come before the
	// merge that lands them (and may add their fragment).
	list, err := git("rev-list", "--topo-order", "--reverse", base+"..HEAD")
	assert.NoError(t, err)
	var pending []string
	for _, c := range strings.Fields(list) {
		// A merge counts with what it brings to its first parent.
		files, err := git("diff-tree", "--no-commit-id", "--name-only", "-r", "-m", "--first-parent", c)
		assert.NoError(t, err)
		msg, _ := git("log", "-1", "--format=%s%n%b", c)
		user, fragment := false, false
		for _, f := range strings.Split(files, "\n") {
			switch {
			case strings.HasPrefix(f, "changelogs/fragments/"), f == "changelogs/changelog.yaml":
				fragment = true
			case strings.HasPrefix(f, "playbooks/"),
				strings.HasPrefix(f, "modules/") && !strings.HasSuffix(f, "_test.go"):
				user = true
			}
		}
		switch {
		case fragment:
			pending = nil
		case user && !strings.Contains(msg, "[no changelog]"):
			subject, _, _ := strings.Cut(msg, "\n")
			pending = append(pending, c[:10]+" "+subject)
		}
	}
	assert.Empty(t, pending, "these commits change modules/ or playbooks/ and no changelog fragment follows them: "+
		"add changelogs/fragments/<topic>.yml (see changelogs/config.yaml for the sections)")
}
