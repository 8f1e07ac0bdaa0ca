package ansible

// Type names an option type, spelled as AnsibleModule spells it.
type Type string

const (
	TypeStr   Type = "str"
	TypeBool  Type = "bool"
	TypeInt   Type = "int"
	TypeFloat Type = "float"
	TypePath  Type = "path"
	TypeList  Type = "list"
	TypeDict  Type = "dict"
	TypeRaw   Type = "raw"
)

// Option is one entry of an argument spec.
type Option struct {
	Name     string
	Type     Type // defaults to str
	Elements Type // element type of a list
	Required bool
	Default  any
	Choices  []any
	Aliases  []string
	NoLog    bool
	// EnvFallback names environment variables read, in order, when the
	// option is not set (AnsibleModule's env_fallback).
	EnvFallback []string
	// EnvFileFallback names environment variables that hold the path of a
	// file whose content is the value (one trailing line break dropped),
	// read when neither the option nor EnvFallback is set. Secrets then
	// travel as files, so a record of the job's environment (ansible-runner
	// writes one to artifacts/<job>/command) holds a path, not a password.
	EnvFileFallback []string
	// Options are the sub-options of a dict, or of each dict in a list
	// with Elements dict.
	Options *Spec

	// Range bounds an int option (inclusive); nil means any int. A value
	// outside it is refused at validation, before the module runs.
	Range *IntRange
	// MaxLen bounds a str option's length in characters and MaxItems a
	// list's number of elements; 0 means unbounded.
	MaxLen   int
	MaxItems int
	// Check is an extra rule on the coerced value (see the validators in
	// bounds.go); its error is worded without the option's name, which
	// validation adds.
	Check func(value any) error
	// URLCredentials marks a str option that may hold a URL with
	// user:password@: the credentials are masked like no_log values
	// wherever the value appears, the invocation included.
	URLCredentials bool

	Description  []string
	VersionAdded string
}

// RequiredIf is AnsibleModule's required_if entry: when Key equals Value,
// Requirements must be set (all of them, or one when AnyOf).
type RequiredIf struct {
	Key          string
	Value        any
	Requirements []string
	AnyOf        bool
}

// Spec is an argument spec with the rules that link its options.
type Spec struct {
	Options           []Option
	MutuallyExclusive [][]string
	RequiredTogether  [][]string
	RequiredOneOf     [][]string
	RequiredIf        []RequiredIf
	RequiredBy        map[string][]string
	// Insecure lists option values that turn a verification off; each
	// gives one warning per task naming the option.
	Insecure []Insecure
}

// Merge returns a spec holding s's options and rules followed by other's,
// so a module can start from a shared connection spec and add its own
// (base_argument_spec() + update).
func (s Spec) Merge(other Spec) Spec {
	out := Spec{
		Options:           append(append([]Option{}, s.Options...), other.Options...),
		MutuallyExclusive: append(append([][]string{}, s.MutuallyExclusive...), other.MutuallyExclusive...),
		RequiredTogether:  append(append([][]string{}, s.RequiredTogether...), other.RequiredTogether...),
		RequiredOneOf:     append(append([][]string{}, s.RequiredOneOf...), other.RequiredOneOf...),
		RequiredIf:        append(append([]RequiredIf{}, s.RequiredIf...), other.RequiredIf...),
		Insecure:          append(append([]Insecure{}, s.Insecure...), other.Insecure...),
	}
	if len(s.RequiredBy)+len(other.RequiredBy) > 0 {
		out.RequiredBy = map[string][]string{}
		for k, v := range s.RequiredBy {
			out.RequiredBy[k] = v
		}
		for k, v := range other.RequiredBy {
			out.RequiredBy[k] = v
		}
	}
	return out
}

// Doc is the part of a module's documentation that is not in its spec.
type Doc struct {
	ShortDescription string
	Description      []string
	Notes            []string
	Requirements     []string
	// CheckMode and DiffMode describe the support level for the
	// attributes block: "full", "partial" or "none".
	CheckMode string
	DiffMode  string
	Examples  string
	Return    map[string]ReturnValue
}

// ReturnValue documents one key of the result.
type ReturnValue struct {
	Description []string
	Returned    string
	Type        string
	Sample      any
	Contains    map[string]ReturnValue
}
