package ansible

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Markdown renders a module's reference page (docs/modules) from the same
// spec and Doc as its sidecar, so the page cannot drift from ansible-doc.
func Markdown(name string, m Module, info DocInfo) string {
	d := m.Doc()
	var b strings.Builder
	fmt.Fprintf(&b, "### %s.%s\n\n%s.\n\n", info.Collection, name, d.ShortDescription)
	for _, p := range d.Description {
		b.WriteString(mdText(p) + "\n\n")
	}
	b.WriteString("| option | type | default | description |\n|---|---|---|---|\n")
	writeOptions(&b, m.Spec(), "")
	b.WriteString("\n")
	if len(d.Notes) > 0 {
		b.WriteString("Notes:\n\n")
		for _, n := range d.Notes {
			b.WriteString("- " + mdText(n) + "\n")
		}
		b.WriteString("\n")
	}
	if len(d.Return) > 0 {
		keys := make([]string, 0, len(d.Return))
		for k := range d.Return {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("Returns: ")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "`%s` (%s)", k, d.Return[k].Type)
		}
		b.WriteString(".\n\n")
	}
	if ex := strings.TrimSpace(d.Examples); ex != "" {
		b.WriteString("```yaml\n" + ex + "\n```\n\n")
	}
	return b.String()
}

func writeOptions(b *strings.Builder, spec Spec, prefix string) {
	opts := append([]Option{}, spec.Options...)
	sort.Slice(opts, func(i, j int) bool { return opts[i].Name < opts[j].Name })
	for _, o := range opts {
		t := string(o.Type)
		if t == "" {
			t = string(TypeStr)
		}
		if o.Elements != "" {
			t += " of " + string(o.Elements)
		}
		def := ""
		switch v := o.Default.(type) {
		case nil:
		case string, bool, int, float64:
			def = fmt.Sprintf("`%v`", v)
		default:
			j, _ := json.Marshal(v) // a spec default is plain data
			def = "`" + string(j) + "`"
		}
		var extra []string
		if o.Required {
			extra = append(extra, "**required**")
		}
		if len(o.Choices) > 0 {
			cs := make([]string, len(o.Choices))
			for i, c := range o.Choices {
				cs[i] = fmt.Sprintf("`%v`", c)
			}
			extra = append(extra, "choices: "+strings.Join(cs, ", "))
		}
		if len(o.Aliases) > 0 {
			extra = append(extra, "aliases: "+strings.Join(o.Aliases, ", "))
		}
		if len(o.EnvFallback) > 0 {
			extra = append(extra, "env: "+strings.Join(o.EnvFallback, ", "))
		}
		if len(o.EnvFileFallback) > 0 {
			extra = append(extra, "file named by env: "+strings.Join(o.EnvFileFallback, ", "))
		}
		if r := o.Range; r != nil {
			extra = append(extra, fmt.Sprintf("%d to %d", r.Min, r.Max))
		}
		if o.NoLog {
			extra = append(extra, "secret")
		}
		desc := mdText(strings.Join(o.Description, " "))
		if len(extra) > 0 {
			desc += " (" + strings.Join(extra, "; ") + ")"
		}
		fmt.Fprintf(b, "| `%s%s` | %s | %s | %s |\n", prefix, o.Name, t, def, strings.ReplaceAll(desc, "|", `\|`))
		if o.Options != nil {
			writeOptions(b, *o.Options, prefix+o.Name+".")
		}
	}
}

var docMarkup = regexp.MustCompile(`\b([OVCMI])\(([^)]*)\)`)

// mdText turns Ansible doc markup (O(opt), V(val), C(code), M(module))
// into Markdown code spans.
func mdText(s string) string {
	return docMarkup.ReplaceAllString(s, "`$2`")
}
