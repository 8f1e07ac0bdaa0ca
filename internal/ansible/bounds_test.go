package ansible

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func boundsSpec() Spec {
	return Spec{
		Options: []Option{
			{Name: "port", Type: TypeInt, Default: 22, Range: PortRange},
			{Name: "label", Type: TypeStr, MaxLen: 5},
			{Name: "lines", Type: TypeList, Elements: TypeStr, MaxItems: 2},
			{Name: "name", Type: TypeStr, Check: CheckVMName},
			{Name: "url", Type: TypeStr, URLCredentials: true},
			{Name: "verify", Type: TypeBool, Default: true},
			{Name: "pin", Type: TypeStr},
			{Name: "sub", Type: TypeDict, Options: &Spec{Options: []Option{{Name: "port", Type: TypeInt, Range: Between(0, 10)}}}},
		},
		Insecure: []Insecure{{Option: "verify", Value: false, Unless: []string{"pin"}, When: []string{"url"}, Msg: "not verified"}},
	}
}

func TestBounds(t *testing.T) {
	cases := []struct {
		name string
		args map[string]any
		err  string
	}{
		{"in range", map[string]any{"port": "2222", "label": "abcde", "lines": []any{"a", "b"}, "name": "svm-01"}, ""},
		{"negative port", map[string]any{"port": -1}, "value of port must be between 1 and 65535, got: -1"},
		{"port from a string", map[string]any{"port": "70000"}, "value of port must be between 1 and 65535, got: 70000"},
		{"long label", map[string]any{"label": "abcdef"}, "value of label must be at most 5 characters long, got 6"},
		{"label counts characters", map[string]any{"label": "ääääé"}, ""},
		{"many lines", map[string]any{"lines": []any{"a", "b", "c"}}, "value of lines must have at most 2 elements, got 3"},
		{"sub-option", map[string]any{"sub": map[string]any{"port": 11}}, "value of port must be between 0 and 10, got: 11 found in sub"},
		{"tab in name", map[string]any{"name": "a\tb"}, "value of name is invalid: control character U+0009 at byte 1"},
		{"zero-width joiner", map[string]any{"name": "a\u200db"}, "value of name is invalid: invisible or bidirectional formatting character U+200D at byte 1"},
		{"leading space", map[string]any{"name": " a"}, "value of name is invalid: a VM name must not begin or end with white space"},
		{"ampersand", map[string]any{"name": "a&b"}, `value of name is invalid: character '&' at byte 1 is not allowed (no < > & ")`},
		{"80 characters", map[string]any{"name": strings.Repeat("é", 80)}, ""},
		{"invalid utf-8", map[string]any{"name": "a\xffb"}, "value of name is invalid: a VM name must be valid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vr := boundsSpec().Validate(c.args, ValidateOptions{ModuleName: "x"})
			if c.err == "" {
				assert.Empty(t, vr.Errors)
				return
			}
			require.NotEmpty(t, vr.Errors)
			assert.Equal(t, c.err, vr.Errors[0])
		})
	}
}

func TestInsecureWarnings(t *testing.T) {
	cases := []struct {
		name string
		args map[string]any
		want []string
	}{
		{"verified", map[string]any{"url": "https://h"}, nil},
		{"off", map[string]any{"url": "https://h", "verify": "no"}, []string{"verify=false: not verified"}},
		{"off but pinned", map[string]any{"url": "https://h", "verify": false, "pin": "AB"}, nil},
		{"off, connection unused", map[string]any{"verify": false}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vr := boundsSpec().Validate(c.args, ValidateOptions{ModuleName: "x"})
			require.Empty(t, vr.Errors)
			assert.Equal(t, c.want, vr.Warnings)
		})
	}
}

func TestURLSecrets(t *testing.T) {
	cases := []struct {
		url  string
		want []string
	}{
		{"https://u:pw@h/x.ova", []string{"u:pw", "pw"}},
		{"https://u:Pct%zzPw@h:1/x", []string{"u:Pct%zzPw", "Pct%zzPw"}},
		{"https://u:p%40ss@h/x", []string{"u:p%40ss", "p%40ss", "p@ss"}},
		{`https://u:a"b\c@h/x`, []string{`u:a"b\c`, `a"b\c`}},
		{"https://u:p@ss@h/x", []string{"u:p@ss", "p@ss"}},
		{"https://user@h/x", nil},
		{"https://h/x?a=b@c", nil},
		{"/srv/x@y.ova", nil},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			assert.Equal(t, c.want, URLSecrets(c.url))
		})
	}
}

// URL credentials are masked in the invocation and in every message, even
// when validation fails.
func TestURLCredentialsMaskedInResult(t *testing.T) {
	m := &fileModule{applied: new(int)}
	path := filepath.Join(t.TempDir(), "f")
	for _, args := range []map[string]any{
		{"path": path, "content": "https://u:S3cr%zzet@h/x"},
		{"path": path, "content": "https://u:S3cr%zzet@h/x", "state": "bogus"},
	} {
		spec := m.Spec()
		spec.Options[1].URLCredentials = true
		raw, err := json.Marshal(args)
		require.NoError(t, err)
		inv, err := ParseArgs(raw)
		require.NoError(t, err)
		res := Execute(context.Background(), "file", specModule{m, spec}, inv, func(string) (string, bool) { return "", false })
		out, err := json.Marshal(res)
		require.NoError(t, err)
		assert.NotContains(t, string(out), "S3cr%zzet")
		assert.Contains(t, string(out), "https://********@h/x")
	}
}

type specModule struct {
	*fileModule
	spec Spec
}

func (s specModule) Spec() Spec { return s.spec }

// The args file is removed once read when it is the controller's (named
// args in the task's tmp dir) and the user did not ask to keep remote files.
func TestRemoveArgsFile(t *testing.T) {
	home, err := os.UserHomeDir()
	require.NoError(t, err)
	tmp := t.TempDir()
	cases := []struct {
		name   string
		file   string
		inv    Invocation
		remove bool
	}{
		{"controller's", "args", Invocation{TmpDir: tmp + "/"}, true},
		{"keep remote files", "args", Invocation{TmpDir: tmp, KeepRemoteFiles: true}, false},
		{"no tmp dir given", "args", Invocation{}, false},
		{"another name", "my-args.json", Invocation{TmpDir: tmp}, false},
		{"another dir", "args", Invocation{TmpDir: filepath.Join(home, ".ansible", "tmp", "ansible-tmp-none")}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(tmp, c.file)
			require.NoError(t, os.WriteFile(p, []byte("{}"), 0o600))
			require.NoError(t, RemoveArgsFile(p, c.inv))
			_, err := os.Stat(p)
			assert.Equal(t, c.remove, os.IsNotExist(err))
		})
	}
}

// Main removes the controller's args file before the module runs, so a
// run killed later leaves no password on disk.
func TestMainRemovesArgsFileFirst(t *testing.T) {
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	seen := filepath.Join(dir, "seen")
	raw, err := json.Marshal(map[string]any{"path": seen, "content": "x", "token": "Tok-123", "_ansible_tmpdir": dir})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(argsFile, raw, 0o600))
	m := &probeModule{fileModule: &fileModule{applied: new(int)}, argsFile: argsFile}
	var out bytes.Buffer
	assert.Equal(t, 0, Main(Registry{{Name: "file", New: func() Module { return m }}}, []string{"file", argsFile}, &out), out.String())
	assert.True(t, m.goneInObserve, "the args file was gone when the module ran")
	assert.NoFileExists(t, argsFile)
}

type probeModule struct {
	*fileModule
	argsFile      string
	goneInObserve bool
}

func (p *probeModule) Observe(ctx context.Context, req *Request, resp *Response) (Observed, error) {
	_, err := os.Stat(p.argsFile)
	p.goneInObserve = os.IsNotExist(err)
	return p.fileModule.Observe(ctx, req, resp)
}

// A run cancelled by SIGTERM fails saying so.
func TestSignalCauseInFailure(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&SignalError{Signal: syscall.SIGTERM})
	m := &blockingModule{fileModule: &fileModule{applied: new(int)}}
	raw, _ := json.Marshal(map[string]any{"path": "/nonexistent"})
	inv, err := ParseArgs(raw)
	require.NoError(t, err)
	res := Execute(ctx, "file", m, inv, nil)
	require.True(t, res.Failed())
	assert.Equal(t, "interrupted by SIGTERM: the run was cancelled: wait: context canceled", res.Msg())
}

type blockingModule struct{ *fileModule }

func (b *blockingModule) Observe(ctx context.Context, _ *Request, _ *Response) (Observed, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("wait: %w", ctx.Err())
}

func TestEnvFileFallback(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("Fil3-Secret\n"), 0o600))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	spec := Spec{Options: []Option{{Name: "password", NoLog: true, EnvFallback: []string{"PW"}, EnvFileFallback: []string{"PW_FILE"}}}}
	cases := []struct {
		name string
		args map[string]any
		env  map[string]string
		want any
		err  string
	}{
		{"from the file", nil, map[string]string{"PW_FILE": pwFile}, "Fil3-Secret", ""},
		{"the variable wins", nil, map[string]string{"PW": "env", "PW_FILE": pwFile}, "env", ""},
		{"the option wins", map[string]any{"password": "opt"}, map[string]string{"PW_FILE": pwFile}, "opt", ""},
		{"empty path is unset", nil, map[string]string{"PW_FILE": ""}, nil, ""},
		{"missing file", nil, map[string]string{"PW_FILE": filepath.Join(dir, "nope")}, nil, "value of password: read the file named by PW_FILE: open "},
		{"a fifo never blocks", nil, map[string]string{"PW_FILE": fifo}, nil, "value of password: read the file named by PW_FILE: " + fifo + " is not a regular file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vr := spec.Validate(c.args, ValidateOptions{Getenv: func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }})
			if c.err != "" {
				require.NotEmpty(t, vr.Errors)
				assert.True(t, strings.HasPrefix(vr.Errors[0], c.err), vr.Errors[0])
				return
			}
			require.Empty(t, vr.Errors)
			assert.Equal(t, c.want, vr.Params.Get("password"))
			if c.want != nil {
				assert.Contains(t, vr.NoLogValues, c.want)
			}
		})
	}
}
