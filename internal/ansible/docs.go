package ansible

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// DocInfo is what the sidecar needs beyond the module itself.
type DocInfo struct {
	Collection   string // e.g. ksvla.lightagent
	VersionAdded string // the collection version that added the module
	Author       string
}

type sidecar struct {
	Documentation documentation     `yaml:"DOCUMENTATION"`
	Examples      string            `yaml:"EXAMPLES"`
	Return        map[string]retDoc `yaml:"RETURN"`
}

type documentation struct {
	Module           string               `yaml:"module"`
	ShortDescription string               `yaml:"short_description"`
	Description      []string             `yaml:"description"`
	VersionAdded     string               `yaml:"version_added"`
	Author           []string             `yaml:"author"`
	Options          map[string]optDoc    `yaml:"options"`
	Attributes       map[string]attribute `yaml:"attributes"`
	Notes            []string             `yaml:"notes,omitempty"`
	Requirements     []string             `yaml:"requirements,omitempty"`
}

type optDoc struct {
	Description  []string          `yaml:"description"`
	Type         string            `yaml:"type"`
	Elements     string            `yaml:"elements,omitempty"`
	Required     bool              `yaml:"required,omitempty"`
	Default      defaultValue      `yaml:"default,omitempty"`
	Choices      []any             `yaml:"choices,omitempty"`
	Aliases      []string          `yaml:"aliases,omitempty"`
	NoLog        bool              `yaml:"no_log,omitempty"`
	VersionAdded string            `yaml:"version_added,omitempty"`
	Suboptions   map[string]optDoc `yaml:"suboptions,omitempty"`
}

type attribute struct {
	Support     string   `yaml:"support"`
	Description []string `yaml:"description"`
}

type retDoc struct {
	Description []string          `yaml:"description"`
	Returned    string            `yaml:"returned"`
	Type        string            `yaml:"type"`
	Sample      any               `yaml:"sample,omitempty"`
	Contains    map[string]retDoc `yaml:"contains,omitempty"`
}

// Sidecar renders the <module>.yml documentation ansible-doc reads for a
// binary module, from the module's spec and Doc, so docs cannot drift
// from the code.
func Sidecar(name string, m Module, info DocInfo) ([]byte, error) {
	doc, err := docsOf(name, m, info)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString("# Generated from the module's option spec by `make docs`; do not edit.\n")
	if err := encodeYAML(&buf, doc); err != nil {
		return nil, fmt.Errorf("render docs of %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// Stub renders plugins/modules/<module>.py for the built collection: the
// module's documentation as Python strings (what ansible-doc -l reads for
// a module, where it would try to read a binary), and, if Python is ever
// asked to run it, a failure naming the action plugin that runs the binary.
func Stub(name string, m Module, info DocInfo) ([]byte, error) {
	doc, err := docsOf(name, m, info)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# -*- coding: utf-8 -*-\n# Generated from the module's option spec by `make docs`; do not edit.\n")
	fmt.Fprintf(&b, "# %s.%s is a Go binary that the action plugin %s.ksvla runs; this file is its documentation.\n", info.Collection, name, info.Collection)
	b.WriteString("from __future__ import absolute_import, division, print_function\n\n__metaclass__ = type\n")
	parts := []struct {
		name string
		v    any
	}{{"DOCUMENTATION", doc.Documentation}, {"EXAMPLES", nil}, {"RETURN", doc.Return}}
	for _, p := range parts {
		var text bytes.Buffer
		if p.v == nil {
			text.WriteString(doc.Examples)
		} else if err := encodeYAML(&text, p.v); err != nil {
			return nil, fmt.Errorf("render docs of %s: %w", name, err)
		}
		if strings.Contains(text.String(), "'''") {
			return nil, fmt.Errorf("module %s: %s contains a Python string delimiter", name, p.name)
		}
		fmt.Fprintf(&b, "\n%s = r'''\n%s'''\n", p.name, text.String())
	}
	fmt.Fprintf(&b, `
if __name__ == "__main__":
    import json

    print(json.dumps({"failed": True, "msg": "%s.%s runs through the action plugin %s.ksvla: call it by its FQCN"}))
    raise SystemExit(1)
`, info.Collection, name, info.Collection)
	return b.Bytes(), nil
}

func encodeYAML(buf *bytes.Buffer, v any) error {
	enc := yaml.NewEncoder(buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}

// docsOf builds a module's documentation with its markup in the forms
// ansible-core 2.14 renders (see Markup214).
func docsOf(name string, m Module, info DocInfo) (sidecar, error) {
	d := m.Doc()
	spec := m.Spec()
	support := func(s string) string {
		if s == "" {
			return "full"
		}
		return s
	}
	doc := sidecar{
		Documentation: documentation{
			Module:           name,
			ShortDescription: d.ShortDescription,
			Description:      Markup214(d.Description),
			VersionAdded:     info.VersionAdded,
			Author:           []string{info.Author},
			Options:          optionDocs(spec),
			Attributes: map[string]attribute{
				"check_mode": {Support: support(d.CheckMode), Description: []string{"Can run in check_mode and return changed status prediction without modifying target."}},
				"diff_mode":  {Support: support(d.DiffMode), Description: []string{"Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode."}},
			},
			Notes:        Markup214(d.Notes),
			Requirements: d.Requirements,
		},
		Examples: strings.TrimLeft(d.Examples, "\n"),
		Return:   returnDocs(d.Return),
	}
	if doc.Documentation.ShortDescription == "" || len(doc.Documentation.Description) == 0 {
		return sidecar{}, fmt.Errorf("module %s: short description and description are required", name)
	}
	return doc, nil
}

func optionDocs(spec Spec) map[string]optDoc {
	out := map[string]optDoc{}
	for _, o := range spec.Options {
		t := o.Type
		if t == "" {
			t = TypeStr
		}
		desc := append([]string{}, o.Description...)
		if len(desc) == 0 {
			desc = []string{"No description."}
		}
		if len(o.EnvFallback) > 0 {
			vars := make([]string, len(o.EnvFallback))
			for i, e := range o.EnvFallback {
				vars[i] = "C(" + e + ")"
			}
			desc = append(desc, "If not set, the value of the environment variable "+strings.Join(vars, " or ")+" is used.")
		}
		if len(o.EnvFileFallback) > 0 {
			vars := make([]string, len(o.EnvFileFallback))
			for i, e := range o.EnvFileFallback {
				vars[i] = "C(" + e + ")"
			}
			desc = append(desc, "Failing that, the content of the file the environment variable "+strings.Join(vars, " or ")+" names (one trailing line break dropped): a secret passed as a file stays out of the job's recorded environment.")
		}
		if r := o.Range; r != nil {
			desc = append(desc, fmt.Sprintf("Must be between %d and %d.", r.Min, r.Max))
		}
		if o.MaxItems > 0 {
			desc = append(desc, fmt.Sprintf("At most %d elements.", o.MaxItems))
		}
		if o.MaxLen > 0 {
			desc = append(desc, fmt.Sprintf("At most %d characters.", o.MaxLen))
		}
		aliases := append([]string{}, o.Aliases...)
		sort.Strings(aliases)
		od := optDoc{
			Description:  Markup214(desc),
			Type:         string(t),
			Elements:     string(o.Elements),
			Required:     o.Required,
			Default:      defaultValue{o.Default},
			Choices:      o.Choices,
			Aliases:      aliases,
			NoLog:        o.NoLog,
			VersionAdded: o.VersionAdded,
		}
		if o.Options != nil {
			od.Suboptions = optionDocs(*o.Options)
		}
		out[o.Name] = od
	}
	return out
}

func returnDocs(in map[string]ReturnValue) map[string]retDoc {
	if len(in) == 0 {
		return nil
	}
	out := map[string]retDoc{}
	for k, v := range in {
		out[k] = retDoc{
			Description: Markup214(v.Description),
			Returned:    markup214.ReplaceAllString(v.Returned, "C("),
			Type:        v.Type,
			Sample:      v.Sample,
			Contains:    returnDocs(v.Contains),
		}
	}
	return out
}

// markup214 matches the semantic markup ansible-core 2.15 added: O(option),
// V(value), RV(return value), E(env var). 2.14, the oldest core the
// collection supports, prints it raw.
var markup214 = regexp.MustCompile(`\b(?:O|V|RV|E)\(`)

// Markup214 rewrites the specs' semantic markup into the code markup
// ansible-core 2.14 renders, C(), so ansible-doc shows it on every
// supported core. The specs keep O()/V()/RV() for when the minimum moves.
func Markup214(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = markup214.ReplaceAllString(s, "C(")
	}
	return out
}

// defaultValue prints a default even when it is a zero value (false, 0,
// ""), and nothing when the option has no default.
type defaultValue struct{ v any }

func (d defaultValue) IsZero() bool              { return d.v == nil }
func (d defaultValue) MarshalYAML() (any, error) { return d.v, nil }
