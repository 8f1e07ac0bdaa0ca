package ansible

import (
	"encoding/json"
	"fmt"
)

// Params are validated options: every spec option is present (nil when
// unset and without default), coerced to its type: string, bool, int,
// float64, []any, map[string]any. Set tells an option the user gave (or
// that came from an environment fallback) from one filled by its default.
type Params struct {
	Values map[string]any
	set    map[string]bool
}

// NewParams builds Params from already validated values; set names the
// options given by the user. Used by the validator and by tests.
func NewParams(values map[string]any, set ...string) Params {
	p := Params{Values: values, set: map[string]bool{}}
	for _, s := range set {
		p.set[s] = true
	}
	return p
}

// IsSet reports whether the user (or an environment fallback) gave name.
func (p Params) IsSet(name string) bool { return p.set[name] }

// Get returns the raw value of name.
func (p Params) Get(name string) any { return p.Values[name] }

// String returns a str/path option, "" when null.
func (p Params) String(name string) string {
	s, _ := p.Values[name].(string)
	return s
}

// Bool returns a bool option, false when null.
func (p Params) Bool(name string) bool {
	b, _ := p.Values[name].(bool)
	return b
}

// Int returns an int option, 0 when null.
func (p Params) Int(name string) int {
	i, _ := p.Values[name].(int)
	return i
}

// Float returns a float option, 0 when null.
func (p Params) Float(name string) float64 {
	f, _ := p.Values[name].(float64)
	return f
}

// Decode copies the options into a struct through their JSON form, so a
// module can declare a typed Options struct with json tags named after its
// options.
func (p Params) Decode(into any) error {
	raw, err := json.Marshal(p.Values)
	if err != nil {
		return fmt.Errorf("encode options: %w", err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("decode options: %w", err)
	}
	return nil
}
