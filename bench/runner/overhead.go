package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables that would let a module find a vCenter or KSC
// without options: unset, so the validation failure is the same everywhere.
var connEnv = []string{"VMWARE_HOST=", "VMWARE_USER=", "VMWARE_PASSWORD=", "KSC_URL=", "KSC_USERNAME=", "KSC_PASSWORD="}

// overhead: the cost of one module call (args parse, validation, result)
// as a process, through the `ansible` controller, and per task in
// ansible-playbook, against ansible.builtin.ping; binary size and memory.
func overhead(ctx context.Context, e *Env) Section {
	sec := Section{Title: "1. Module overhead",
		Intro: "agent_facts called with `target_version` missing, so it fails at validation: args file parse, option " +
			"validation and the JSON result, no network. The Python peer is `ansible.builtin.ping` (parses its args, " +
			"returns `pong`). Both go through the same controller."}
	bin := filepath.Join(e.Root, "bin", "ksvla")
	st, err := os.Stat(bin)
	if err != nil {
		return failedSection(sec.Title, fmt.Errorf("stat %s (run make bin-modules): %w", bin, err))
	}
	args := filepath.Join(e.Work, "overhead-args.json")
	if err := writeJSON(args, map[string]any{"datacenter": "DC1"}); err != nil {
		return failedSection(sec.Title, err)
	}
	mustFail := func(s Sample) error {
		var res struct {
			Failed bool   `json:"failed"`
			Msg    string `json:"msg"`
		}
		if err := json.Unmarshal(s.Stdout, &res); err != nil || !res.Failed || !strings.Contains(res.Msg, "target_version") {
			return fmt.Errorf("want a validation failure naming target_version, got %s", tail(string(s.Stdout), 300))
		}
		return nil
	}
	runs := max(e.Runs, 5)
	proc, err := measure(ctx, "agent_facts as a process (validation failure)",
		Cmd{Argv: []string{filepath.Join(e.Root, "library", "agent_facts"), args}, Env: connEnv, OKRCs: []int{0, 1}},
		runs*4, 2, 0, nil, mustFail)
	if err != nil {
		return failedSection(sec.Title, err)
	}
	sec.Rows = append(sec.Rows, Row{Series: proc})

	adhoc := func(name string, a ...string) (Series, error) {
		argv := append([]string{"ansible", "localhost"}, a...)
		return measure(ctx, name, Cmd{Argv: argv, Env: connEnv, Dir: e.Root, OKRCs: []int{0, 2}}, runs, 1, 0, nil, nil)
	}
	ping, err := adhoc("ansible localhost -m ping", "-m", "ansible.builtin.ping")
	if err != nil {
		return failedSection(sec.Title, err)
	}
	ours, err := adhoc("ansible localhost -m ksvla.lightagent.agent_facts (validation failure)",
		"-m", "ksvla.lightagent.agent_facts", "-a", "datacenter=DC1")
	if err != nil {
		return failedSection(sec.Title, err)
	}
	sec.Rows = append(sec.Rows, Row{Series: ping}, Row{Series: ours})

	// Playbooks: 20 tasks of each, and an empty play, so the per-task
	// figure is the marginal cost without the controller's start-up.
	pb := func(name, task string, n int) string {
		var b strings.Builder
		b.WriteString("- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n")
		if n == 0 {
			b.WriteString("    []\n")
		}
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "    - name: t%d\n%s", i, task)
		}
		p := filepath.Join(e.Work, name)
		_ = os.WriteFile(p, []byte(b.String()), 0o600)
		return p
	}
	empty := pb("pb-empty.yml", "", 0)
	pings := pb("pb-ping-20.yml", "      ansible.builtin.ping:\n", 20)
	facts := pb("pb-facts-20.yml", "      ksvla.lightagent.agent_facts:\n        datacenter: DC1\n      ignore_errors: true\n", 20)
	play := func(name, path string) (Series, error) {
		return measure(ctx, name, Cmd{Argv: []string{"ansible-playbook", path}, Env: connEnv, Dir: e.Root}, runs, 1, 0, nil, nil)
	}
	var plays [3]Series
	for i, p := range []struct{ name, path string }{
		{"ansible-playbook, empty play", empty},
		{"ansible-playbook, 20 x ansible.builtin.ping", pings},
		{"ansible-playbook, 20 x ksvla.lightagent.agent_facts (validation failure)", facts},
	} {
		if plays[i], err = play(p.name, p.path); err != nil {
			return failedSection(sec.Title, err)
		}
		sec.Rows = append(sec.Rows, Row{Series: plays[i]})
	}
	perPing := (plays[1].Time.Median - plays[0].Time.Median) / 20
	perOurs := (plays[2].Time.Median - plays[0].Time.Median) / 20
	sec.Notes = append(sec.Notes,
		fmt.Sprintf("Per task inside ansible-playbook (median of 20 tasks minus median of the empty play, / 20): "+
			"ksvla.lightagent.agent_facts %.1f ms, ansible.builtin.ping %.1f ms, ratio %.2f.", perOurs*1000, perPing*1000, perOurs/perPing),
		fmt.Sprintf("Binary: bin/ksvla %.1f MiB (%d bytes), stripped (`-ldflags \"-s -w\"`, `-trimpath`, CGO off); one binary serves every module.",
			float64(st.Size())/(1<<20), st.Size()),
		"Peak RSS is wait4's ru_maxrss (what `/usr/bin/time -v` prints): for `ansible` rows, the largest process of the controller's tree.")
	sec.Goals = append(sec.Goals,
		Goal{Figure: "ad-hoc call, agent_facts / ping (time)", Value: ours.Time.Median / ping.Time.Median, Unit: "x",
			Target: "no goal stated in the issue; < 1 means the Go module costs less than the Python one"},
		Goal{Figure: "per task in ansible-playbook, agent_facts / ping", Value: perOurs / perPing, Unit: "x",
			Target: "no goal stated in the issue; < 1 means the Go module costs less than the Python one"},
		Goal{Figure: "module process peak RSS", Value: proc.RSSMiB.Median, Unit: "MiB", Target: "no goal stated; reported"},
	)
	return sec
}
