package ansible

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fileModule is a tiny real module used to drive the runtime: it keeps one
// file's content at the desired value.
type fileModule struct {
	applied *int
	panicIn string
}

type fileState struct {
	Exists  bool   `json:"exists"`
	Content string `json:"content,omitempty"`
}

type filePlan struct{ before, after fileState }

func (p filePlan) Empty() bool               { return p.before == p.after }
func (p filePlan) Diff() (before, after any) { return p.before, p.after }

func (m *fileModule) Spec() Spec {
	return Spec{Options: []Option{
		{Name: "path", Type: TypePath, Required: true},
		{Name: "content", Type: TypeStr, Default: ""},
		{Name: "token", Type: TypeStr, NoLog: true, EnvFallback: []string{"TEST_TOKEN"}},
		{Name: "state", Type: TypeStr, Default: "present", Choices: []any{"present", "absent"}},
	}}
}

func (m *fileModule) Doc() Doc {
	return Doc{ShortDescription: "Keep a file", Description: []string{"Keeps a file's content."}}
}

func (m *fileModule) Observe(_ context.Context, req *Request, resp *Response) (Observed, error) {
	if m.panicIn == "observe" {
		panic("boom with " + req.Params.String("token"))
	}
	b, err := os.ReadFile(req.Params.String("path"))
	if errors.Is(err, os.ErrNotExist) {
		return fileState{}, nil
	}
	if err != nil {
		return nil, err
	}
	return fileState{Exists: true, Content: string(b)}, nil
}

func (m *fileModule) Plan(req *Request, observed Observed, resp *Response) (Plan, error) {
	want := fileState{}
	if req.Params.String("state") == "present" {
		want = fileState{Exists: true, Content: req.Params.String("content")}
	}
	resp.Set("token_used", "token is "+req.Params.String("token"))
	return filePlan{before: observed.(fileState), after: want}, nil
}

func (m *fileModule) Apply(_ context.Context, req *Request, plan Plan, resp *Response) error {
	*m.applied++
	p := plan.(filePlan)
	if !p.after.Exists {
		return os.Remove(req.Params.String("path"))
	}
	return os.WriteFile(req.Params.String("path"), []byte(p.after.Content), 0o600)
}

var _ Applier = (*fileModule)(nil)

func runFile(t *testing.T, m *fileModule, args map[string]any, env map[string]string) Result {
	t.Helper()
	raw, err := json.Marshal(args)
	require.NoError(t, err)
	inv, err := ParseArgs(raw)
	require.NoError(t, err)
	return Execute(context.Background(), "file", m, inv, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

func TestExecuteCheckApplyIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	applied := 0
	m := &fileModule{applied: &applied}
	args := map[string]any{"path": path, "content": "hello", "_ansible_diff": true}

	check := map[string]any{"_ansible_check_mode": true}
	for k, v := range args {
		check[k] = v
	}
	res := runFile(t, m, check, nil)
	assert.False(t, res.Failed(), res.Msg())
	assert.True(t, res.Changed(), "check mode predicts the change")
	assert.Equal(t, 0, applied, "check mode applies nothing")
	assert.NoFileExists(t, path)
	assert.Equal(t, map[string]any{"before": map[string]any{"exists": false}, "after": map[string]any{"exists": true, "content": "hello"}}, res["diff"])

	res = runFile(t, m, args, nil)
	assert.True(t, res.Changed())
	assert.Equal(t, 1, applied)
	assert.FileExists(t, path)

	res = runFile(t, m, args, nil)
	assert.False(t, res.Changed(), "second run is unchanged")
	assert.Nil(t, res["diff"], "no diff without a change")
	assert.Equal(t, 1, applied)
}

func TestExecuteResultShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	applied := 0
	res := runFile(t, &fileModule{applied: &applied}, map[string]any{
		"path": path, "token": "tok-123", "_ansible_check_mode": true, "_ansible_new_key_2030": 1,
	}, nil)
	require.False(t, res.Failed(), res.Msg())
	assert.Nil(t, res["diff"], "diff only in diff mode")
	assert.Equal(t, "token is ********", res["token_used"], "a no_log value is masked inside other strings")
	inv := res["invocation"].(map[string]any)["module_args"].(map[string]any)
	assert.Equal(t, "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", inv["token"])
	assert.Equal(t, "present", inv["state"], "defaults appear in module_args")
	_, hasInternal := inv["_ansible_new_key_2030"]
	assert.False(t, hasInternal, "unknown internal keys are skipped, not rejected")
}

func TestExecuteFailures(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		args    map[string]any
		env     map[string]string
		panicIn string
		wantMsg string
		secret  string
	}{
		"missing required": {
			args:    map[string]any{"content": "x"},
			wantMsg: "missing required arguments: path",
		},
		"unknown option": {
			args:    map[string]any{"path": dir + "/a", "colour": "red"},
			wantMsg: "Unsupported parameters for (file) module: colour. Supported parameters include: content, path, state, token.",
		},
		"bad choice fails in check mode too": {
			args:    map[string]any{"path": dir + "/a", "state": "gone", "_ansible_check_mode": true},
			wantMsg: "value of state must be one of: present, absent, got: gone",
		},
		"panic is a failure, secret from env masked": {
			args:    map[string]any{"path": dir + "/a"},
			env:     map[string]string{"TEST_TOKEN": "env-secret-9"},
			panicIn: "observe",
			wantMsg: "module file panicked: boom with ********",
			secret:  "env-secret-9",
		},
		"no_log value masked when validation fails": {
			args:    map[string]any{"path": dir + "/a", "token": "given-secret", "bogus": "given-secret"},
			wantMsg: "Unsupported parameters for (file) module: bogus. Supported parameters include: content, path, state, token.",
			secret:  "given-secret",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			applied := 0
			res := runFile(t, &fileModule{applied: &applied, panicIn: tc.panicIn}, tc.args, tc.env)
			assert.True(t, res.Failed())
			assert.Equal(t, tc.wantMsg, res.Msg())
			assert.Equal(t, 0, applied)
			if tc.secret != "" {
				b, _ := json.Marshal(res)
				assert.NotContains(t, string(b), tc.secret)
			}
		})
	}
}

func TestMainDispatchAndExitCode(t *testing.T) {
	dir := t.TempDir()
	applied := 0
	reg := Registry{{Name: "file", New: func() Module { return &fileModule{applied: &applied} }}}
	write := func(args map[string]any) string {
		b, _ := json.Marshal(args)
		p := filepath.Join(dir, "args")
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	tests := map[string]struct {
		argv0    string
		args     map[string]any
		wantCode int
		wantMsg  string
	}{
		"by FQCN":              {"/tmp/x/AnsiballZ_ksvla", map[string]any{"_ansible_module_name": "ksvla.lightagent.file", "path": dir + "/f"}, 0, ""},
		"by argv0":             {"/tmp/x/AnsiballZ_file", map[string]any{"path": dir + "/g"}, 0, ""},
		"by hand from library": {"library/file", map[string]any{"path": dir + "/h"}, 0, ""},
		"unknown module":       {"/tmp/x/AnsiballZ_nope", map[string]any{"_ansible_module_name": "nope"}, 1, `unknown module "nope" (called as AnsiballZ_nope): known modules are file`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			code := Main(reg, []string{tc.argv0, write(tc.args)}, &out)
			assert.Equal(t, tc.wantCode, code)
			var res Result
			require.NoError(t, json.Unmarshal(out.Bytes(), &res), out.String())
			if tc.wantMsg != "" {
				assert.Equal(t, tc.wantMsg, res.Msg())
			}
		})
	}
	var out bytes.Buffer
	assert.Equal(t, 1, Main(reg, []string{"file", filepath.Join(dir, "missing")}, &out))
	assert.Contains(t, out.String(), "read args file")
}

func TestParseArgsRejectsNonObject(t *testing.T) {
	for _, raw := range []string{"", "[]", "nope", `"x"`} {
		_, err := ParseArgs([]byte(raw))
		assert.Error(t, err, raw)
	}
}

// closingModule records Close calls, to check the runtime closes a
// module's connections however the run ends.
type closingModule struct {
	fileModule
	closed int
}

func (m *closingModule) Close(ctx context.Context) {
	if ctx.Err() == nil {
		m.closed++
	}
}

func TestExecuteClosesConnections(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		args    map[string]any
		panicIn string
		closed  int
	}{
		"applied":           {args: map[string]any{"path": filepath.Join(dir, "a"), "content": "x"}, closed: 1},
		"check mode":        {args: map[string]any{"path": filepath.Join(dir, "b"), "_ansible_check_mode": true}, closed: 1},
		"observe failed":    {args: map[string]any{"path": dir}, closed: 1}, // reading a directory fails
		"panicked":          {args: map[string]any{"path": filepath.Join(dir, "c")}, panicIn: "observe", closed: 1},
		"invalid arguments": {args: map[string]any{}, closed: 0}, // nothing was opened: validation comes first
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			applied := 0
			m := &closingModule{fileModule: fileModule{applied: &applied, panicIn: tc.panicIn}}
			raw, err := json.Marshal(tc.args)
			require.NoError(t, err)
			inv, err := ParseArgs(raw)
			require.NoError(t, err)
			Execute(context.Background(), "file", m, inv, nil)
			assert.Equal(t, tc.closed, m.closed)
		})
	}
}
