package ansible

import (
	"bytes"
	"fmt"
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
			Description:      d.Description,
			VersionAdded:     info.VersionAdded,
			Author:           []string{info.Author},
			Options:          optionDocs(spec),
			Attributes: map[string]attribute{
				"check_mode": {Support: support(d.CheckMode), Description: []string{"Can run in check_mode and return changed status prediction without modifying target."}},
				"diff_mode":  {Support: support(d.DiffMode), Description: []string{"Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode."}},
			},
			Notes:        d.Notes,
			Requirements: d.Requirements,
		},
		Examples: strings.TrimLeft(d.Examples, "\n"),
		Return:   returnDocs(d.Return),
	}
	if doc.Documentation.ShortDescription == "" || len(doc.Documentation.Description) == 0 {
		return nil, fmt.Errorf("module %s: short description and description are required", name)
	}
	var buf bytes.Buffer
	buf.WriteString("# Generated from the module's option spec by `make docs`; do not edit.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("render docs of %s: %w", name, err)
	}
	return buf.Bytes(), nil
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
			Description:  desc,
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
			Description: v.Description,
			Returned:    v.Returned,
			Type:        v.Type,
			Sample:      v.Sample,
			Contains:    returnDocs(v.Contains),
		}
	}
	return out
}

// defaultValue prints a default even when it is a zero value (false, 0,
// ""), and nothing when the option has no default.
type defaultValue struct{ v any }

func (d defaultValue) IsZero() bool              { return d.v == nil }
func (d defaultValue) MarshalYAML() (any, error) { return d.v, nil }
