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

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// headlessShell is Debian's chromium-headless-shell (tests/deps.sh installs it).
const headlessShell = "chromium-headless-shell"

// status.yml's HTML page, opened in a real headless browser: it loads
// without a console message (its script ran: the "shown" counter is
// filled in by it), it shows the lab's numbers, every hypervisor and every
// SVM, and a screenshot is kept in tests/.out/ for a person to look at.
func TestStatusPageInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	browser, err := exec.LookPath(headlessShell)
	require.NoError(t, err, "install it with tests/deps.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 3, VMsPerHost: 2})
	st := l.Status()
	page := filepath.Join(t.TempDir(), "status.html")
	run, err := playtest.Playbook(ctx, playtest.Options{Playbook: "playbooks/status.yml",
		Args: []string{"-e", "@" + filepath.Join(l.Dir(), "vars.yml"), "-e", "status_html=" + page}})
	require.NoError(t, err)
	require.Zero(t, run.ExitCode, run.Output)

	out := filepath.Join(playtest.Root(), "tests", ".out")
	require.NoError(t, os.MkdirAll(out, 0o755))
	shot := filepath.Join(out, "status.png")
	_ = os.Remove(shot)
	args := func(extra ...string) []string {
		return append([]string{"--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0",
			"--user-data-dir=" + t.TempDir(), "--window-size=1400,900"}, append(extra, "file://"+page)...)
	}
	cmd := exec.CommandContext(ctx, browser, args("--dump-dom")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	for _, line := range strings.Split(stderr.String(), "\n") {
		assert.NotContains(t, line, ":CONSOLE", "the page logged to the console")
	}

	text := string(dom)
	hosts := len(st.Hosts)
	assert.Contains(t, text, fmt.Sprintf("%d of %d hypervisors shown", hosts, hosts), "the page's script did not run")
	assert.Regexp(t, regexp.MustCompile(fmt.Sprintf(`<b>0</b> of <b>%d</b> hypervisors ready`, hosts)), text)
	assert.Contains(t, text, "Generated ")
	assert.Contains(t, text, l.Vars(l.Dir()).KSCURL, "the page names the KSC it read")
	for _, h := range st.Hosts {
		assert.Contains(t, text, h.Name)
		for _, s := range h.SVMs {
			assert.Contains(t, text, s.Name)
			assert.Contains(t, text, s.IP, "%s's address", s.Name)
		}
	}
	assert.NotContains(t, text, "http://", "the page must load no external asset")
	assert.NotContains(t, text, "https://cdn", "the page must load no external asset")

	shotCmd := exec.CommandContext(ctx, browser, args("--screenshot="+shot, "--hide-scrollbars")...)
	b, err := shotCmd.CombinedOutput()
	require.NoError(t, err, string(b))
	info, err := os.Stat(shot)
	require.NoError(t, err, "no screenshot written")
	assert.Greater(t, info.Size(), int64(10_000), "the screenshot is suspiciously small: an empty page?")
	t.Logf("screenshot: %s", shot)
}
