package ansible

import (
	"fmt"
	"sort"
	"strings"
)

// Masked values, as AnsibleModule's remove_values writes them.
const (
	maskExact     = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
	maskSubstring = "********"
)

// Masker hides secrets in any JSON-shaped value, the way AnsibleModule's
// remove_values does over a whole result: a string equal to a secret
// becomes VALUE_SPECIFIED_IN_NO_LOG_PARAMETER, a secret inside a longer
// string becomes ********, numbers whose text is a secret are replaced, and
// booleans and nulls are kept. Map keys are masked too.
type Masker struct {
	secrets []string // longest first, so a secret containing another is replaced whole
}

// NewMasker returns a Masker for the given secrets; empty ones are ignored.
func NewMasker(secrets ...string) *Masker {
	seen := map[string]bool{}
	m := &Masker{}
	for _, s := range secrets {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		m.secrets = append(m.secrets, s)
	}
	sort.Slice(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
	return m
}

// Empty reports whether there is nothing to mask.
func (m *Masker) Empty() bool { return len(m.secrets) == 0 }

// String masks one string.
func (m *Masker) String(s string) string {
	if len(m.secrets) == 0 || s == "" {
		return s
	}
	for _, sec := range m.secrets {
		if s == sec {
			return maskExact
		}
	}
	for _, sec := range m.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, maskSubstring)
		}
	}
	return s
}

// Value masks a JSON-shaped value (maps, slices, strings, numbers), returning
// a new value; the input is not modified.
func (m *Masker) Value(v any) any {
	if len(m.secrets) == 0 {
		return v
	}
	switch t := v.(type) {
	case string:
		return m.String(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[m.String(k)] = m.Value(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = m.Value(e)
		}
		return out
	case []string:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = m.String(e)
		}
		return out
	case int, int64, float64:
		if s := fmt.Sprint(t); m.String(s) != s {
			return m.String(s)
		}
		return t
	default:
		return v
	}
}
