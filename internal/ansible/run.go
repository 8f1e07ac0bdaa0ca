package ansible

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/tidwall/gjson"
)

// internalPrefix marks the controller's keys in the args file. Every key
// with it is skipped, including ones newer cores add
// (_ansible_target_log_info, _ansible_tracebacks_for, ...).
const internalPrefix = "_ansible_"

// Invocation is what the controller told the module besides its options.
type Invocation struct {
	CheckMode     bool
	DiffMode      bool
	NoLog         bool
	Verbosity     int
	ModuleName    string
	IgnoreUnknown bool
	// KeepRemoteFiles is ANSIBLE_KEEP_REMOTE_FILES: the user wants the
	// remote tmp dir, args file included, left for debugging.
	KeepRemoteFiles bool
	// TmpDir is the remote tmp dir the controller made for this task.
	TmpDir string
	// Args are the user's options, _ansible_* keys removed.
	Args map[string]any
}

// ParseArgs reads an args file's JSON (one object) and splits the
// controller's keys from the user's options.
func ParseArgs(raw []byte) (Invocation, error) {
	var inv Invocation
	if !gjson.ValidBytes(raw) {
		return inv, errors.New("args file is not valid JSON")
	}
	doc := gjson.ParseBytes(raw)
	if !doc.IsObject() {
		return inv, errors.New("args file must hold one JSON object")
	}
	inv.Args = map[string]any{}
	doc.ForEach(func(key, value gjson.Result) bool {
		k := key.String()
		if !strings.HasPrefix(k, internalPrefix) {
			inv.Args[k] = value.Value()
			return true
		}
		switch strings.TrimPrefix(k, internalPrefix) {
		case "check_mode":
			inv.CheckMode = value.Bool()
		case "diff":
			inv.DiffMode = value.Bool()
		case "no_log":
			inv.NoLog = value.Bool()
		case "verbosity":
			inv.Verbosity = int(value.Int())
		case "module_name":
			inv.ModuleName = value.String()
		case "ignore_unknown_opts":
			inv.IgnoreUnknown = value.Bool()
		case "keep_remote_files":
			inv.KeepRemoteFiles = value.Bool()
		case "tmpdir":
			inv.TmpDir = value.String()
		}
		return true
	})
	return inv, nil
}

// Result is the JSON object a module prints.
type Result map[string]any

// Failed reports whether the result is a failure.
func (r Result) Failed() bool { b, _ := r["failed"].(bool); return b }

// Changed reports whether the result says something changed.
func (r Result) Changed() bool { b, _ := r["changed"].(bool); return b }

// Msg returns the result's msg.
func (r Result) Msg() string { s, _ := r["msg"].(string); return s }

// Env reads environment variables; nil means the process environment.
type Env func(string) (string, bool)

// Execute runs a module for one invocation and returns its result, masked
// and ready to print. It never panics: a module panic becomes a failed
// result (with the stack only at verbosity >= 3).
func Execute(ctx context.Context, name string, m Module, inv Invocation, env Env) Result {
	if env == nil {
		env = os.LookupEnv
	}
	r := &run{name: name, module: m, inv: inv, resp: &Response{}}
	r.execute(ctx, env)
	if sig := (*SignalError)(nil); r.err != nil && errors.As(context.Cause(ctx), &sig) && !errors.As(r.err, &sig) {
		// The module's own error only says its context ended; say why.
		r.err = fmt.Errorf("%w: %w", sig, r.err)
	}
	return r.result()
}

type run struct {
	name    string
	module  Module
	inv     Invocation
	resp    *Response
	params  map[string]any // validated, for invocation.module_args
	noLog   []string
	changed bool
	diff    map[string]any
	err     error
	stack   string
}

func (r *run) execute(ctx context.Context, env Env) {
	defer func() {
		if p := recover(); p != nil {
			r.err = fmt.Errorf("module %s panicked: %v", r.name, p)
			r.stack = string(debug.Stack())
		}
	}()
	spec := r.module.Spec()
	// Secrets given as no_log options must be masked even when validation
	// fails, so collect them from the raw args first.
	r.noLog = rawNoLogValues(spec, r.inv.Args)
	vr := spec.Validate(r.inv.Args, ValidateOptions{
		ModuleName:    r.inv.ModuleNameOr(r.name),
		IgnoreUnknown: r.inv.IgnoreUnknown,
		Getenv:        env,
	})
	r.noLog = append(r.noLog, vr.NoLogValues...)
	r.resp.Warnings = append(r.resp.Warnings, vr.Warnings...)
	if len(vr.Errors) > 0 {
		// Validation fails even in check mode, as AnsibleModule does.
		r.err = errors.New(vr.Errors[0])
		return
	}
	r.params = vr.Params.Values
	if rp, ok := r.module.(reporter); ok {
		// Registered first, so it runs last: the values are what the
		// phases came to, however the run ended.
		defer func() {
			for k, v := range rp.report() {
				r.resp.Set(k, v)
			}
		}()
	}

	if t := vr.Params.Int("timeout"); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, time.Duration(t)*time.Second, &DeadlineError{Seconds: t})
		defer cancel()
		defer func() { r.err = ranOutOfTime(ctx, r.err) }()
	}
	if c, ok := r.module.(Closer); ok {
		defer c.Close(context.WithoutCancel(ctx))
	}
	req := &Request{
		Params:     vr.Params,
		CheckMode:  r.inv.CheckMode,
		DiffMode:   r.inv.DiffMode,
		Verbosity:  r.inv.Verbosity,
		ModuleName: r.name,
	}
	observed, err := r.module.Observe(ctx, req, r.resp)
	if err != nil {
		r.err = err
		return
	}
	plan, err := r.module.Plan(req, observed, r.resp)
	if err != nil {
		r.err = err
		return
	}
	if plan == nil {
		plan = NoChange{}
	}
	r.changed = !plan.Empty()
	// The diff is read once Apply is done: a plan Apply refines (a task
	// that failed on targets, not the "completed" it planned) shows what
	// happened, not what was predicted.
	defer func() {
		if r.inv.DiffMode && r.changed {
			before, after := plan.Diff()
			r.diff = map[string]any{"before": before, "after": after}
		}
	}()
	if plan.Empty() || r.inv.CheckMode {
		return
	}
	applier, ok := r.module.(Applier)
	if !ok {
		r.err = fmt.Errorf("module %s planned a change but cannot apply changes", r.name)
		return
	}
	if err := applier.Apply(ctx, req, plan, r.resp); err != nil {
		r.err = err
	}
}

// ModuleNameOr is the module name the user wrote, for messages.
func (inv Invocation) ModuleNameOr(fallback string) string {
	if inv.ModuleName != "" {
		return inv.ModuleName
	}
	return fallback
}

func (r *run) result() Result {
	res := map[string]any{}
	for k, v := range r.resp.Values {
		res[k] = v
	}
	if len(r.resp.Facts) > 0 {
		res["ansible_facts"] = r.resp.Facts
	}
	res["changed"] = r.changed
	if r.diff != nil {
		res["diff"] = r.diff
	}
	if r.resp.Msg != "" {
		res["msg"] = r.resp.Msg
	}
	if r.err != nil {
		res["failed"] = true
		res["msg"] = r.err.Error()
		if r.stack != "" && r.inv.Verbosity >= 3 {
			res["exception"] = r.stack
		}
	}
	if len(r.resp.Warnings) > 0 {
		res["warnings"] = r.resp.Warnings
	}
	if len(r.resp.Deprecations) > 0 {
		res["deprecations"] = r.resp.Deprecations
	}
	args := r.params
	if args == nil {
		args = r.inv.Args
	}
	res["invocation"] = map[string]any{"module_args": args}

	// Round-trip through JSON so module structs become plain maps the
	// masker can walk, then mask the whole result.
	plain, err := toPlain(res)
	if err != nil {
		plain = map[string]any{"failed": true, "changed": r.changed, "msg": fmt.Sprintf("encode result of %s: %v", r.name, err)}
	}
	masker := NewMasker(append(r.noLog, r.resp.Secrets...)...)
	out, _ := masker.Value(plain).(map[string]any)
	for k := range out {
		// The controller drops internal keys with a warning; never send any.
		if strings.HasPrefix(k, internalPrefix) {
			delete(out, k)
		}
	}
	return Result(out)
}

func toPlain(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return numbersToGo(out).(map[string]any), nil
}

// numbersToGo turns json.Number into int64 or float64, so integers stay
// integers in the printed result.
func numbersToGo(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = numbersToGo(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = numbersToGo(e)
		}
		return t
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	default:
		return v
	}
}

// rawNoLogValues collects the string forms of no_log options as given,
// top level and nested, before validation has a chance to fail.
func rawNoLogValues(spec Spec, args map[string]any) []string {
	var out []string
	for _, o := range spec.Options {
		names := append([]string{o.Name}, o.Aliases...)
		for _, n := range names {
			v, ok := args[n]
			if !ok || v == nil {
				continue
			}
			if o.NoLog {
				out = append(out, noLogStrings(v)...)
			}
			if s, ok := v.(string); ok && o.URLCredentials {
				out = append(out, URLSecrets(s)...)
			}
			if o.Options != nil {
				switch t := v.(type) {
				case map[string]any:
					out = append(out, rawNoLogValues(*o.Options, t)...)
				case []any:
					for _, e := range t {
						if m, ok := e.(map[string]any); ok {
							out = append(out, rawNoLogValues(*o.Options, m)...)
						}
					}
				}
			}
		}
	}
	return out
}

func noLogStrings(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			out = append(out, noLogStrings(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range t {
			out = append(out, noLogStrings(e)...)
		}
		return out
	case bool, nil:
		return nil
	default:
		return []string{fmt.Sprint(t)}
	}
}

// DeadlineError is the cause of a run's context when the module's timeout
// option ran out. It reads and matches as context.DeadlineExceeded, so
// code that reports context.Cause or checks for the deadline works as
// before; the runtime then says which option ran out, for every module
// the same way (see ranOutOfTime).
type DeadlineError struct{ Seconds int }

func (e *DeadlineError) Error() string { return context.DeadlineExceeded.Error() }
func (e *DeadlineError) Unwrap() error { return context.DeadlineExceeded }

// Explain is what the runtime adds to the error of a run that ran out of
// time.
func (e *DeadlineError) Explain() string {
	return fmt.Sprintf("the module ran out of time: option timeout is %d s", e.Seconds)
}

// ranOutOfTime ends the error of a run whose deadline came with why, once:
// the module's own error only says its context ended.
func ranOutOfTime(ctx context.Context, err error) error {
	var de *DeadlineError
	if err == nil || !errors.As(context.Cause(ctx), &de) || strings.Contains(err.Error(), de.Explain()) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, de.Explain())
}

// SignalError is the cause of a run's context when the process got
// SIGTERM or SIGINT (Ansible's async timeout, AWX's cancel, Ctrl-C): the
// module stops, cleans up what its step started and fails saying so.
type SignalError struct{ Signal os.Signal }

func (e *SignalError) Error() string {
	return fmt.Sprintf("interrupted by %s: the run was cancelled", signalName(e.Signal))
}

func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return s.String()
}
