package changelog

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Render returns CHANGELOG.rst: the released versions, newest first, laid
// out as antsibull-changelog lays out a collection's release notes.
func (l *Log) Render() string {
	var b strings.Builder
	title := l.Config.Title + " Release Notes"
	bar := strings.Repeat("=", len(title))
	fmt.Fprintf(&b, "%s\n%s\n%s\n\n.. contents:: Topics\n\n", bar, title, bar)
	versions := make([]string, 0, len(l.Changes.Releases))
	for v := range l.Changes.Releases {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return versionLess(versions[j], versions[i]) })
	for _, v := range versions {
		r := l.Changes.Releases[v]
		head := "v" + v
		fmt.Fprintf(&b, "%s\n%s\n\n", head, strings.Repeat("=", len(head)))
		if s, ok := r.Changes[l.Config.PreludeName].(string); ok {
			section(&b, l.Config.PreludeTitle)
			b.WriteString(oneLine(s) + "\n\n")
		}
		for _, sec := range l.Config.Sections {
			if len(sec) != 2 {
				continue
			}
			entries := strList(r.Changes[sec[0]])
			if len(entries) == 0 {
				continue
			}
			section(&b, sec[1])
			for _, e := range entries {
				b.WriteString("- " + oneLine(e) + "\n")
			}
			b.WriteString("\n")
		}
		if len(r.Modules) > 0 {
			section(&b, "New Modules")
			mods := append([]Plugin(nil), r.Modules...)
			sort.Slice(mods, func(i, j int) bool { return mods[i].Name < mods[j].Name })
			collection := strings.ToLower(l.Config.Title)
			for _, m := range mods {
				fmt.Fprintf(&b, "- %s.%s - %s\n", collection, m.Name, oneLine(m.Description))
			}
			b.WriteString("\n")
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

func section(b *strings.Builder, title string) {
	fmt.Fprintf(b, "%s\n%s\n\n", title, strings.Repeat("-", len(title)))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func strList(v any) []string {
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// versionLess orders x.y.z versions numerically.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, errx := strconv.Atoi(pa[i])
		y, erry := strconv.Atoi(pb[i])
		if errx != nil || erry != nil {
			if pa[i] != pb[i] {
				return pa[i] < pb[i]
			}
			continue
		}
		if x != y {
			return x < y
		}
	}
	return len(pa) < len(pb)
}
