package fleet

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Compat says which Light Agents each Protection Server version serves.
// In KSVLA 6.x the Light Agents are Kaspersky Endpoint Security for
// Windows and for Linux 12.x in Light Agent mode, so their versions never
// share the Protection Server's line: which agent connects to which SVM is
// a vendor table, not arithmetic (KSVLA 6.0/6.1 help, topic 254867).
//
// A version in the table stands for every version that starts with its
// parts: Protection Server "6.1" covers 6.1.0.100, agent "12.1" covers
// 12.1.0.1297. Products are KSC product keys or display names, compared
// without case, as in Rules.LightAgent.
type Compat []CompatRow

// CompatRow is one Protection Server version and the agents it serves.
type CompatRow struct {
	ProtectionServer Version              `json:"protection_server"`
	Agents           map[string][]Version `json:"agents"` // product -> agent versions
}

// DefaultCompat holds only the pairs the vendor publishes: KESL 12.0
// connects to Protection Server 6.0 and KESL 12.1 to 6.1 (KSVLA 6.0/6.1
// help, topic 254867). The 6.2 help's table of supported agent versions
// and every pair for Kaspersky Endpoint Security for Windows were not
// found: a site adds them to the compatibility option from the vendor's
// help for its versions.
var DefaultCompat = map[string]any{
	"6.0": map[string]any{"kesl": []any{"12.0"}},
	"6.1": map[string]any{"kesl": []any{"12.1"}},
}

// ParseCompat reads the compatibility option: a dict of Protection Server
// version -> dict of agent product -> list of agent versions (a single
// version may be given as a string). Errors say which entry is wrong.
func ParseCompat(raw map[string]any) (Compat, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("compatibility is empty: give at least one Protection Server version with the agent products and versions it serves")
	}
	var out Compat
	for _, ps := range slices.Sorted(maps.Keys(raw)) {
		if err := checkVersion(ps); err != nil {
			return nil, fmt.Errorf("compatibility: key %q: %w", ps, err)
		}
		products, ok := raw[ps].(map[string]any)
		if !ok || len(products) == 0 {
			return nil, fmt.Errorf("compatibility: %s must map agent products to lists of agent versions, e.g. {kesl: [\"12.1\"]}, got %s", ps, describe(raw[ps]))
		}
		row := CompatRow{ProtectionServer: Version(ps), Agents: map[string][]Version{}}
		for _, prod := range slices.Sorted(maps.Keys(products)) {
			if strings.TrimSpace(prod) == "" {
				return nil, fmt.Errorf("compatibility: %s: empty product name", ps)
			}
			versions, err := versionList(products[prod])
			if err != nil {
				return nil, fmt.Errorf("compatibility: %s -> %s: %w", ps, prod, err)
			}
			row.Agents[strings.ToLower(prod)] = versions
		}
		out = append(out, row)
	}
	return out, nil
}

func describe(v any) string {
	if v == nil {
		return "nothing"
	}
	return fmt.Sprintf("%T %v", v, v)
}

func versionList(v any) ([]Version, error) {
	var items []any
	switch x := v.(type) {
	case string:
		items = []any{x}
	case []any:
		items = x
	case []string:
		for _, s := range x {
			items = append(items, s)
		}
	default:
		return nil, fmt.Errorf("must be a list of agent versions, got %s", describe(v))
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("lists no agent version")
	}
	out := make([]Version, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			// YAML reads 12.1 unquoted as a float, which loses 12.10.
			return nil, fmt.Errorf("version %v is not a string (quote it: \"%v\")", it, it)
		}
		if err := checkVersion(s); err != nil {
			return nil, fmt.Errorf("version %q: %w", s, err)
		}
		out = append(out, Version(s))
	}
	return out, nil
}

// checkVersion accepts dotted decimal versions (6, 6.1, 12.1.0.1297).
func checkVersion(s string) error {
	parts := strings.Split(s, ".")
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return fmt.Errorf("not a dotted version of numbers")
		}
	}
	return nil
}

// covers reports whether table version t stands for version v: v starts
// with t's parts (compared as numbers).
func covers(t, v Version) bool {
	if t == "" || v == "" {
		return false
	}
	tp, vp := strings.Split(string(t), "."), strings.Split(string(v), ".")
	if len(vp) < len(tp) {
		return false
	}
	for i := range tp {
		if Version(tp[i]).Compare(Version(vp[i])) != 0 {
			return false
		}
	}
	return true
}

// Knows reports whether the table has a row for Protection Server ps.
func (c Compat) Knows(ps Version) bool {
	for _, r := range c {
		if covers(r.ProtectionServer, ps) {
			return true
		}
	}
	return false
}

// Serves reports whether an SVM with Protection Server ps serves a Light
// Agent of product p (matched by its key or display name) and version v.
func (c Compat) Serves(ps Version, p Product, v Version) bool {
	for _, r := range c {
		if covers(r.ProtectionServer, ps) && r.accepts(p, v) {
			return true
		}
	}
	return false
}

func (r CompatRow) accepts(p Product, v Version) bool {
	for _, name := range []string{p.Key, p.DisplayName} {
		for _, t := range r.Agents[strings.ToLower(name)] {
			if name != "" && covers(t, v) {
				return true
			}
		}
	}
	return false
}

// ServersOf lists the Protection Server versions of the table that serve
// an agent of product p and version v.
func (c Compat) ServersOf(p Product, v Version) []string {
	out := []string{}
	for _, r := range c {
		if r.accepts(p, v) {
			out = append(out, string(r.ProtectionServer))
		}
	}
	return out
}
