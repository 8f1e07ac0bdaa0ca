// Package ansibletest runs a module in-process the way the controller
// would, for module tests: args as the task gives them, check and diff mode
// as flags, the result as the controller would receive it (masked).
package ansibletest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ksvla/lightagent/internal/ansible"
)

// Mode selects the controller's modes for one call.
type Mode struct {
	Check bool
	Diff  bool
	// Env is the environment the module sees (fallbacks); nil means none.
	Env map[string]string
}

// Run executes m once with args and returns its result. It fails the test
// only when the args cannot be encoded; a failing module is a result.
func Run(t testing.TB, ctx context.Context, name string, m ansible.Module, args map[string]any, mode Mode) ansible.Result {
	t.Helper()
	full := map[string]any{
		"_ansible_check_mode":  mode.Check,
		"_ansible_diff":        mode.Diff,
		"_ansible_module_name": name,
		"_ansible_verbosity":   0,
	}
	for k, v := range args {
		full[k] = v
	}
	raw, err := json.Marshal(full)
	if err != nil {
		t.Fatalf("encode args: %v", err)
	}
	inv, err := ansible.ParseArgs(raw)
	if err != nil {
		t.Fatalf("parse args: %v", err)
	}
	env := func(k string) (string, bool) {
		v, ok := mode.Env[k]
		return v, ok
	}
	return ansible.Execute(ctx, name, m, inv, env)
}

// Get walks a result by keys (maps) and indexes (lists) and returns the
// value, or nil when the path does not exist.
func Get(v any, path ...any) any {
	if r, ok := v.(ansible.Result); ok {
		v = map[string]any(r)
	}
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}
