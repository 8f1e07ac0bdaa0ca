package modules

import (
	"fmt"
	"strings"
)

// ActionPlugin is the action plugin every module runs through: it picks
// the module binary built for the machine the module runs on.
const ActionPlugin = Collection + ".ksvla"

// routing renders meta/runtime.yml's plugin_routing section from the
// registry: every module routed to ActionPlugin, so a module added to the
// registry is never run as its documentation stub. What else the file
// said is kept: more keys of a registered module's entry (a deprecation)
// under its route, then the entries of modules no longer registered (a
// tombstone, a redirect), then other plugin types' routing, as YAML lines.
func routing(more map[string]string, gone, other string) string {
	var b strings.Builder
	b.WriteString("plugin_routing:\n  modules:\n")
	for _, e := range Registry() {
		fmt.Fprintf(&b, "    %s:\n      action_plugin: %s\n%s", e.Name, ActionPlugin, more[e.Name])
	}
	return b.String() + gone + other
}

// Runtime returns meta/runtime.yml with its plugin_routing section
// regenerated (see routing) and everything else as it is: the action
// groups are a choice per module (ksc_purge takes vCenter options but
// stays out of the vmware group, so module_defaults never turn its
// optional vCenter check on), not something the registry can derive.
// The route of a module no longer registered goes; an entry of one that
// routes no action plugin (a tombstone, a redirect) stays, and so do the
// other keys of a registered module's entry.
func Runtime(current []byte) []byte {
	lines := strings.SplitAfter(string(current), "\n")
	start := len(lines)
	for i, l := range lines {
		if strings.TrimRight(l, " \r\n") == "plugin_routing:" {
			start = i
			break
		}
	}
	// The section ends at the next line at column 0 (a key or a comment).
	end := start + 1
	for end < len(lines) && (strings.HasPrefix(lines[end], " ") || strings.TrimSpace(lines[end]) == "") {
		end++
	}
	for end > start+1 && strings.TrimSpace(lines[end-1]) == "" {
		end-- // blank lines before the next key stay
	}
	more := map[string]string{}
	var gone, other strings.Builder
	if start+1 < end {
		for _, child := range blocks(lines[start+1:end], 2) {
			if key, _, _ := strings.Cut(strings.TrimSpace(child[0]), ":"); key != "modules" {
				other.WriteString(strings.Join(child, ""))
				continue
			}
			for _, entry := range blocks(child[1:], 4) {
				name := strings.TrimSuffix(strings.TrimSpace(entry[0]), ":")
				if _, ok := Registry().Lookup(name); ok {
					for _, key := range blocks(entry[1:], 6) {
						if !strings.HasPrefix(strings.TrimSpace(key[0]), "action_plugin:") {
							more[name] += strings.Join(key, "")
						}
					}
				} else if !strings.Contains(strings.Join(entry, ""), "action_plugin:") {
					gone.WriteString(strings.Join(entry, ""))
				}
			}
		}
	}
	head := strings.Join(lines[:start], "")
	if head != "" && !strings.HasSuffix(head, "\n") {
		head += "\n"
	}
	tail := ""
	if end < len(lines) {
		tail = strings.Join(lines[end:], "")
	}
	return []byte(head + routing(more, gone.String(), other.String()) + tail)
}

// blocks splits YAML lines into the entries that start at this indent,
// each with the lines below it.
func blocks(lines []string, indent int) [][]string {
	var out [][]string
	for _, l := range lines {
		trimmed := strings.TrimLeft(l, " ")
		if len(l)-len(trimmed) == indent && strings.TrimSpace(trimmed) != "" && !strings.HasPrefix(trimmed, "#") {
			out = append(out, []string{l})
		} else if len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], l)
		}
	}
	return out
}
