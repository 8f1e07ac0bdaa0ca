package modules

import (
	"fmt"
	"strings"
)

// ActionPlugin is the action plugin every module runs through: it picks
// the module binary built for the machine the module runs on.
const ActionPlugin = Collection + ".ksvla"

// Routing renders meta/runtime.yml's plugin_routing section from the
// registry: every module routed to ActionPlugin, so a module added to the
// registry is never run as its documentation stub.
func Routing() string {
	var b strings.Builder
	b.WriteString("plugin_routing:\n  modules:\n")
	for _, e := range Registry() {
		fmt.Fprintf(&b, "    %s:\n      action_plugin: %s\n", e.Name, ActionPlugin)
	}
	return b.String()
}

// Runtime returns meta/runtime.yml with its plugin_routing section
// regenerated (see Routing) and everything else as it is: the action
// groups are a choice per module (ksc_purge takes vCenter options but
// stays out of the vmware group, so module_defaults never turn its
// optional vCenter check on), not something the registry can derive.
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
	for end < len(lines) && (lines[end] == "" || strings.HasPrefix(lines[end], " ") || strings.TrimSpace(lines[end]) == "") {
		end++
	}
	for end > start+1 && strings.TrimSpace(lines[end-1]) == "" {
		end-- // blank lines before the next key stay
	}
	head := strings.Join(lines[:start], "")
	if head != "" && !strings.HasSuffix(head, "\n") {
		head += "\n"
	}
	tail := ""
	if end < len(lines) {
		tail = strings.Join(lines[end:], "")
	}
	return []byte(head + Routing() + tail)
}
