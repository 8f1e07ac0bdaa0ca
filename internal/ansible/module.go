// Package ansible is the module runtime: it turns a Module (an option spec
// plus observe -> plan -> apply) into a well-behaved Ansible binary module.
//
// The runtime owns the flow, as AnsibleModule and Terraform's fwserver do:
// it reads the args file, validates the options (failing even in check
// mode), runs Observe and Plan, runs Apply only when the plan is not empty
// and this is not check mode, derives changed and diff, masks every no_log
// value across the whole result, prints once and exits. Modules never print,
// exit or read _ansible_* keys.
package ansible

import "context"

// Module is the core contract every module satisfies.
//
// Observe reads the current state (it runs in check mode too, so it must not
// change anything). Plan is a pure function of the request and the observed
// state: no I/O, deterministic output. The runtime calls Apply (see Applier)
// only when the plan is not empty and this is not check mode.
type Module interface {
	Spec() Spec
	Doc() Doc
	Observe(ctx context.Context, req *Request, resp *Response) (Observed, error)
	Plan(req *Request, observed Observed, resp *Response) (Plan, error)
}

// Applier is implemented by modules that change things. A module without it
// (a facts module) is read-only: its plans must be empty.
type Applier interface {
	Apply(ctx context.Context, req *Request, plan Plan, resp *Response) error
}

// Closer is implemented by modules that keep connections from Observe to
// Apply; the runtime calls Close once the run ends, however it ended
// (failure, panic, check mode), with a context that is not cancelled.
type Closer interface {
	Close(ctx context.Context)
}

// Observed is whatever a module observed; the runtime only passes it along.
type Observed any

// Plan is what a module intends to do, as a value.
//
// Empty reports whether there is nothing to do (then changed is false).
// Diff returns the before and after views of what the module manages; the
// runtime puts them in the result's diff only under diff mode. Values must be
// JSON-encodable and deterministic (sorted), so diffs are stable.
type Plan interface {
	Empty() bool
	Diff() (before, after any)
}

// NoChange is the plan of a module (or a call) that has nothing to do.
type NoChange struct{ State any }

func (NoChange) Empty() bool                 { return true }
func (n NoChange) Diff() (before, after any) { return n.State, n.State }

// Request is what a module is asked to do: validated options plus the
// controller's modes.
type Request struct {
	Params     Params
	CheckMode  bool
	DiffMode   bool
	Verbosity  int
	ModuleName string
}

// Response collects what a module returns besides changed/diff/failed.
// Values are merged into the top level of the result; Facts becomes
// ansible_facts. Secrets lists values learned at run time (a password read
// from a file, a generated token) that must be masked like no_log options.
type Response struct {
	Msg          string
	Values       map[string]any
	Facts        map[string]any
	Warnings     []string
	Deprecations []Deprecation
	Secrets      []string
}

// Set records a module-specific return value.
func (r *Response) Set(key string, value any) {
	if r.Values == nil {
		r.Values = map[string]any{}
	}
	r.Values[key] = value
}

// Warn adds a warning shown by the controller as [WARNING].
func (r *Response) Warn(msg string) { r.Warnings = append(r.Warnings, msg) }

// AddSecret makes the runtime mask value everywhere in the result.
func (r *Response) AddSecret(value string) {
	if value != "" {
		r.Secrets = append(r.Secrets, value)
	}
}

// Deprecation is one entry of the result's deprecations list.
type Deprecation struct {
	Msg            string `json:"msg"`
	Version        string `json:"version,omitempty"`
	Date           string `json:"date,omitempty"`
	CollectionName string `json:"collection_name,omitempty"`
}
