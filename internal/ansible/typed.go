package ansible

import (
	"context"
	"fmt"
	"reflect"
)

// Call is one run of a typed module: its options, decoded once by the
// runtime, the controller's modes, and the response the runtime turns into
// the result. Every phase gets the same Call, so no phase decodes options
// again or carries them through its state.
type Call[O any] struct {
	Options O
	// Params are the validated options as values, for what a struct cannot
	// say (whether the user set an option or its default applies).
	Params     Params
	CheckMode  bool
	DiffMode   bool
	Verbosity  int
	ModuleName string
	*Response
}

// Phases is a module written against its own types (as Terraform's
// framework hands a resource typed plan and state): O its options struct,
// S what Observe read, P what Plan decided. The runtime decodes O once and
// passes S and P between the phases, so no phase type-asserts a value.
//
// Observe reads (it runs in check mode too, so it changes nothing). Plan
// is pure: no I/O, deterministic output; it must return a non-nil plan.
type Phases[O, S any, P Plan] interface {
	Spec() Spec
	Doc() Doc
	Observe(ctx context.Context, c *Call[O]) (S, error)
	Plan(c *Call[O], observed S) (P, error)
}

// Applies is implemented by typed modules that change things; the runtime
// calls Apply only when the plan is not empty and this is not check mode.
// Apply records what it did in the plan (a pointer type), so the result and
// the diff show what happened, not what was predicted.
type Applies[O any, P Plan] interface {
	Apply(ctx context.Context, c *Call[O], plan P) error
}

// Reporter is a phase value that returns values: the runtime calls Report
// once, when the run ends (after Apply, failed or not), and puts the keys
// at the top level of the result. The plan reports when it implements
// Reporter; otherwise the observed state does (a read-only module). One
// place builds the result, so no key is written in one phase and rewritten
// in the next.
type Reporter interface {
	Report() map[string]any
}

// Typed makes a Module of typed phases.
func Typed[O, S any, P Plan](m Phases[O, S, P]) Module {
	return &typed[O, S, P]{phases: m}
}

// typed adapts Phases to the runtime's untyped Module. It is the only
// place phase values pass through any, and it produced them itself.
type typed[O, S any, P Plan] struct {
	phases   Phases[O, S, P]
	call     *Call[O]
	observed *S
	plan     *P
}

func (t *typed[O, S, P]) Spec() Spec { return t.phases.Spec() }
func (t *typed[O, S, P]) Doc() Doc   { return t.phases.Doc() }

// optionsType is the options struct, for the test that checks it against
// the spec (see CheckOptions).
func (t *typed[O, S, P]) optionsType() reflect.Type { return reflect.TypeFor[O]() }

func (t *typed[O, S, P]) Observe(ctx context.Context, req *Request, resp *Response) (Observed, error) {
	t.call = &Call[O]{Params: req.Params, CheckMode: req.CheckMode, DiffMode: req.DiffMode,
		Verbosity: req.Verbosity, ModuleName: req.ModuleName, Response: resp}
	if err := req.Params.Decode(&t.call.Options); err != nil {
		return nil, err
	}
	s, err := t.phases.Observe(ctx, t.call)
	if err != nil {
		return nil, err
	}
	t.observed = &s
	return nil, nil
}

func (t *typed[O, S, P]) Plan(_ *Request, _ Observed, _ *Response) (Plan, error) {
	p, err := t.phases.Plan(t.call, *t.observed)
	if !isNil(p) {
		// A plan returned with its error (a refusal) still reports.
		t.plan = &p
	}
	if err != nil {
		return nil, err
	}
	if isNil(p) {
		return nil, fmt.Errorf("module %s returned no plan", t.call.ModuleName)
	}
	return p, nil
}

func (t *typed[O, S, P]) Apply(ctx context.Context, _ *Request, _ Plan, _ *Response) error {
	a, ok := t.phases.(Applies[O, P])
	if !ok {
		return fmt.Errorf("module %s planned a change but cannot apply changes", t.call.ModuleName)
	}
	return a.Apply(ctx, t.call, *t.plan)
}

// report is the result's values from the phase that reports (see
// Reporter); nil when none does or the phases did not get that far.
func (t *typed[O, S, P]) report() map[string]any {
	if t.plan != nil {
		if r, ok := any(*t.plan).(Reporter); ok {
			return r.Report()
		}
	}
	if t.observed != nil {
		if r, ok := any(*t.observed).(Reporter); ok {
			return r.Report()
		}
	}
	return nil
}

// Close ends what the phases opened (see Closer).
func (t *typed[O, S, P]) Close(ctx context.Context) {
	if c, ok := t.phases.(Closer); ok {
		c.Close(ctx)
	}
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Func:
		return rv.IsNil()
	}
	return false
}

// reporter is how the runtime asks a module for its result values.
type reporter interface{ report() map[string]any }

// OptionsType returns the options struct of a typed module.
func OptionsType(m Module) (reflect.Type, bool) {
	t, ok := m.(interface{ optionsType() reflect.Type })
	if !ok {
		return nil, false
	}
	return t.optionsType(), true
}

// TimeoutOption is the timeout every module has: the runtime ends the run
// after it, in whatever phase, cleans up and fails saying which option ran
// out (see DeadlineError). Modules differ only in the default.
func TimeoutOption(defaultSeconds int) Option {
	return Option{Name: "timeout", Type: TypeInt, Default: defaultSeconds, Range: SecondsRange,
		Description: []string{"How long the whole module may run, in seconds, whatever it is doing: past it the module stops, cleans up what its current step started and fails saying so."}}
}

// WaitTimeoutOption is the bound of a module's wait for something outside
// it (a task, a boot, a lock), separate from its timeout; what says what it
// waits for.
func WaitTimeoutOption(defaultSeconds int, what string) Option {
	return Option{Name: "wait_timeout", Type: TypeInt, Default: defaultSeconds, Range: SecondsRange,
		Description: []string{"How long to wait for " + what + ", in seconds."}}
}

// Deadline is the options struct part of TimeoutOption; modules embed it.
type Deadline struct {
	Timeout int `json:"timeout"`
}
