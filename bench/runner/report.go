package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func writeReport(dir string, rep Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, rep.Profile.JSON), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, rep.Profile.Markdown), []byte(markdown(rep)), 0o644)
}

func fmtStat(s Stat, prec int) string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Median, prec, s.Min, prec, s.Max)
}

func markdown(rep Report) string {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "# Benchmark results (%s profile)\n\nWritten by `%s` (bench/runner -profile %s) on %s; the suite took %.0f s. "+
		"Every figure is median (min–max) over the runs shown as n, measured in this run beside its peers. "+
		"Machine-readable: [%s](%s).\n\n", rep.Profile.Name, rep.Profile.Command, rep.Profile.Name, rep.Date, rep.Seconds, rep.Profile.JSON, rep.Profile.JSON)
	other := profiles["full"]
	if rep.Profile.Name == "full" {
		other = profiles["quick"]
	}
	fmt.Fprintf(&b, "The %s profile (`%s`, [%s](%s)) measures %s.\n\n", other.Name, other.Command, other.Markdown, other.Markdown,
		map[string]string{"quick": "the figures that fit in 15 minutes on this machine",
			"full": "the 16k-VM lab, vmware_vm_info at 4k VMs, the 1 GiB image and the 64-host upgrades as well, in about an hour"}[other.Name])
	b.WriteString("## Machine\n\n| | |\n|---|---|\n")
	for _, kv := range [][2]string{
		{"CPU", fmt.Sprintf("%s, %d cores", m.CPU, m.Cores)}, {"RAM", fmt.Sprintf("%d MiB", m.RAMMiB)},
		{"OS / kernel", m.OS + " / " + m.Kernel}, {"Go", m.Go}, {"ansible-core", m.AnsibleCore}, {"Python", m.Python},
		{"govc", m.Govc}, {"pyVmomi (bench/.py)", m.PyVmomi}, {"community.vmware", m.CommVMware},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], strings.ReplaceAll(kv[1], "|", "/"))
	}
	b.WriteString("\n")

	// Goals first: the headline of every section.
	b.WriteString("## Goals (issues 9 and 20)\n\n| figure | value | goal | met |\n|---|---|---|---|\n")
	for _, s := range rep.Sections {
		for _, g := range s.Goals {
			fmt.Fprintf(&b, "| %s | %.2f %s | %s | %s |\n", g.Figure, g.Value, g.Unit, g.Target, met(g.Met))
		}
	}
	b.WriteString("\n")

	for _, s := range rep.Sections {
		fmt.Fprintf(&b, "## %s\n\n", s.Title)
		if s.Intro != "" {
			fmt.Fprintf(&b, "%s\n\n", s.Intro)
		}
		if len(s.Rows) > 0 {
			extras := map[string]bool{}
			for _, r := range s.Rows {
				for k := range r.Extra {
					extras[k] = true
				}
			}
			var ek []string
			for k := range extras {
				ek = append(ek, k)
			}
			sort.Strings(ek)
			b.WriteString("| command | n | wall s | peak RSS MiB |")
			for _, k := range ek {
				fmt.Fprintf(&b, " %s |", strings.ReplaceAll(k, "_", " "))
			}
			b.WriteString("\n|---|---|---|---|" + strings.Repeat("---|", len(ek)) + "\n")
			for _, r := range s.Rows {
				fmt.Fprintf(&b, "| %s | %d | %s | %s |", r.Name, r.Time.N, fmtStat(r.Time, 3), fmtStat(r.RSSMiB, 1))
				for _, k := range ek {
					prec := 1
					if strings.Contains(k, "calls") || strings.Contains(k, "round_trips") || strings.Contains(k, "reported") {
						prec = 0
					}
					if k == "cpu_s" {
						prec = 2 // user+system time comes in hundredths
					}
					fmt.Fprintf(&b, " %s |", fmtStat(r.Extra[k], prec))
				}
				b.WriteString("\n")
			}
			b.WriteString("\n")
			for _, r := range s.Rows {
				if r.Note != "" {
					fmt.Fprintf(&b, "- %s: %s\n", r.Name, r.Note)
				}
			}
		}
		if len(s.Goals) > 0 {
			for _, g := range s.Goals {
				fmt.Fprintf(&b, "- **%s: %.2f %s** — goal %s: %s\n", g.Figure, g.Value, g.Unit, g.Target, met(g.Met))
			}
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}

	b.WriteString("## 5. Go benchmarks (`go test -run '^$' -bench . -benchmem`)\n\n")
	if rep.GoNote != "" {
		fmt.Fprintf(&b, "%s\n\n", rep.GoNote)
	}
	if len(rep.GoBench) > 0 {
		b.WriteString("| package | benchmark | n | ns/op | B/op | allocs/op | other |\n|---|---|---|---|---|---|---|\n")
		for _, g := range rep.GoBench {
			var other []string
			var keys []string
			for k := range g.Metrics {
				if k != "ns/op" && k != "B/op" && k != "allocs/op" {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				other = append(other, fmt.Sprintf("%s %s", fmtStat(g.Metrics[k], 1), k))
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s |\n", g.Package, g.Name, g.Metrics["ns/op"].N,
				fmtStat(g.Metrics["ns/op"], 0), fmtStat(g.Metrics["B/op"], 0), fmtStat(g.Metrics["allocs/op"], 0), strings.Join(other, "; "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func met(m *bool) string {
	switch {
	case m == nil:
		return "—"
	case *m:
		return "yes"
	default:
		return "**no**"
	}
}
