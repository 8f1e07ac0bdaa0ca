package ansible

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// ValidateOptions tunes a validation run.
type ValidateOptions struct {
	// ModuleName is used in "Unsupported parameters for (<name>) module".
	ModuleName string
	// IgnoreUnknown drops unknown options instead of rejecting them
	// (_ansible_ignore_unknown_opts).
	IgnoreUnknown bool
	// Getenv reads environment fallbacks; nil means no environment.
	Getenv func(string) (string, bool)
}

// ValidationResult is the outcome of Validate, as a value: nothing is
// raised and nothing exits (ArgumentSpecValidator.validate's
// ValidationResult).
type ValidationResult struct {
	Params Params
	// NoLogValues are the values of no_log options from any source
	// (arguments or environment), to be masked in the result.
	NoLogValues []string
	// Errors are every problem found, in the validator's order, worded as
	// AnsibleModule words them. The first one is the message reported.
	Errors   []string
	Warnings []string
}

// Validate checks raw (the args without _ansible_* keys) against the spec.
//
// It follows ansible-core 2.14's ArgumentSpecValidator.validate step by
// step (fallbacks, aliases, no_log values, unsupported parameters,
// mutually_exclusive, required, types, choices, required_together,
// required_one_of, required_if, required_by, defaults, sub-options) and
// words errors as AnsibleModule does. As there, the unsupported-parameters
// error comes last, after the sub-option errors. Getenv is also what path
// options expand $VARS and ~ with. Validate never panics and never changes
// raw or the spec.
//
// Where a Go map has lost the order Python would see (the keys of the
// input, RequiredBy), names are taken in sorted order. Spec programming
// errors that make Python raise part-way (required with a default) are
// reported and validation goes on. The "Module did not set no_log" warning
// is given, as AnsibleModule gives it, only when validation succeeded.
func (s Spec) Validate(raw map[string]any, opts ValidateOptions) ValidationResult {
	v := &validator{opts: opts, supported: map[string]supportedNames{}}
	params, _ := normalize(raw).(map[string]any)
	if params == nil {
		params = map[string]any{}
	}

	v.fallbacks(&s, params)
	aliases, aliasWarnings := v.level(&s, params, "", nil)

	if len(v.unsupported) > 0 {
		v.errors = append(v.errors, v.unsupportedError())
	}
	for _, w := range aliasWarnings {
		v.warnings = append(v.warnings, fmt.Sprintf("Both option %s and its alias %s are set.", w[0], w[1]))
	}
	if len(v.errors) == 0 {
		v.passwordWarnings(&s, params, aliases)
		v.insecureWarnings(&s, params)
	}

	values := make(map[string]any, len(s.Options))
	for _, o := range s.Options {
		values[o.Name] = params[o.Name]
	}
	return ValidationResult{
		Params:      NewParams(values, v.set...),
		NoLogValues: v.noLog,
		Errors:      v.errors,
		Warnings:    v.warnings,
	}
}

type validator struct {
	opts     ValidateOptions
	errors   []string
	warnings []string
	noLog    []string
	set      []string
	// unsupported are flattened names ("parent.child"); supported holds,
	// by the context of each, what that level would have taken.
	unsupported []string
	supported   map[string]supportedNames
}

type supportedNames struct{ params, aliases []string }

func (v *validator) fail(msg string, ctx []string) {
	v.errors = append(v.errors, withContext(msg, ctx))
}

// withContext adds the suffix the checks of validation.py add for a
// sub-option.
func withContext(msg string, ctx []string) string {
	if len(ctx) == 0 {
		return msg
	}
	return msg + " found in " + strings.Join(ctx, " -> ")
}

func (v *validator) addNoLog(s string) {
	if s == "" {
		return
	}
	for _, have := range v.noLog {
		if have == s {
			return
		}
	}
	v.noLog = append(v.noLog, s)
}

// level runs the steps of one spec level on params, the top level or one
// dict of sub-options, after the fallbacks. It returns the alias map and
// the (option, alias) pairs both given, which the caller words.
func (v *validator) level(spec *Spec, params map[string]any, prefix string, ctx []string) (map[string]string, [][2]string) {
	aliases, aliasWarnings := v.handleAliases(spec, params)
	if ctx == nil {
		for _, o := range spec.Options {
			if _, ok := params[o.Name]; ok {
				v.set = append(v.set, o.Name)
			}
		}
	}
	if msg := v.listNoLog(spec, params); msg != "" {
		v.errors = append(v.errors, msg)
	}
	v.checkUnsupported(spec, params, aliases, ctx)
	v.mutuallyExclusive(spec.MutuallyExclusive, params, ctx)
	v.setDefaults(spec, params, false)
	v.requiredArguments(spec, params, ctx)
	v.validateTypes(spec, params, ctx)
	v.validateValues(spec, params, ctx)
	v.validateBounds(spec, params, ctx)
	v.requiredTogether(spec.RequiredTogether, params, ctx)
	v.requiredOneOf(spec.RequiredOneOf, params, ctx)
	v.requiredIf(spec.RequiredIf, params, ctx)
	v.requiredBy(spec.RequiredBy, params, ctx)
	v.setDefaults(spec, params, true)
	v.subSpecs(spec, params, prefix, ctx)
	return aliases, aliasWarnings
}

// fallbacks is set_fallbacks with env_fallback: the first variable set
// wins, even when empty.
func (v *validator) fallbacks(spec *Spec, params map[string]any) {
	for _, o := range spec.Options {
		if _, ok := params[o.Name]; ok || len(o.EnvFallback)+len(o.EnvFileFallback) == 0 || v.opts.Getenv == nil {
			continue
		}
		for _, name := range o.EnvFallback {
			value, ok := v.opts.Getenv(name)
			if !ok {
				continue
			}
			if o.NoLog {
				v.addNoLog(value)
			}
			params[o.Name] = value
			break
		}
		if _, ok := params[o.Name]; !ok {
			v.fileFallback(o, params)
		}
	}
}

// handleAliases is _handle_aliases: the canonical name takes the alias's
// value; the alias key stays, as rules may name it.
func (v *validator) handleAliases(spec *Spec, params map[string]any) (map[string]string, [][2]string) {
	aliases := map[string]string{}
	var warnings [][2]string
	for _, o := range spec.Options {
		if o.Default != nil && o.Required {
			v.errors = append(v.errors, "internal error: required and default are mutually exclusive for "+o.Name)
		}
		for _, a := range o.Aliases {
			aliases[a] = o.Name
			value, ok := params[a]
			if !ok {
				continue
			}
			if _, both := params[o.Name]; both {
				warnings = append(warnings, [2]string{o.Name, a})
			}
			params[o.Name] = value
		}
	}
	return aliases, warnings
}

// listNoLog is _list_no_log_values, which also looks into sub-options
// before they are validated. Python stops at the first malformed
// sub-option value; this goes on collecting (more masking is safer) and
// returns the first error.
func (v *validator) listNoLog(spec *Spec, params map[string]any) string {
	first := ""
	note := func(msg string) {
		if first == "" {
			first = msg
		}
	}
	for _, o := range spec.Options {
		value := params[o.Name]
		if o.NoLog && pyTruthy(value) {
			for _, s := range datastructureStrings(value) {
				v.addNoLog(s)
			}
		}
		if s, ok := value.(string); ok && o.URLCredentials {
			for _, c := range URLSecrets(s) {
				v.addNoLog(c)
			}
		}
		if o.Options == nil || value == nil || !hasSubOptions(o) {
			continue
		}
		elems, ok := value.([]any)
		if !ok {
			elems = []any{value}
		}
		for _, e := range elems {
			if s, ok := e.(string); ok {
				d, err := checkDict(s)
				if err != nil {
					note(err.Error())
					continue
				}
				e = d
			}
			m, ok := e.(map[string]any)
			if !ok {
				note(fmt.Sprintf("Value '%s' in the sub parameter field '%s' must by a %s, not '%s'", pyStr(e), o.Name, o.Type, pyClassName(e)))
				continue
			}
			if msg := v.listNoLog(o.Options, m); msg != "" {
				note(msg)
			}
		}
	}
	return first
}

func hasSubOptions(o Option) bool {
	return o.Type == TypeDict || (o.Type == TypeList && o.Elements == TypeDict)
}

// datastructureStrings is _return_datastructure_name: every non-empty string and
// every number inside value, as strings.
func datastructureStrings(value any) []string {
	switch x := value.(type) {
	case nil, bool:
		return nil
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, datastructureStrings(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, k := range sortedKeys(x) {
			out = append(out, datastructureStrings(x[k])...)
		}
		return out
	}
	return []string{pyStr(value)}
}

// checkUnsupported is _get_unsupported_parameters. With IgnoreUnknown the
// unknown keys are dropped instead.
func (v *validator) checkUnsupported(spec *Spec, params map[string]any, aliases map[string]string, ctx []string) {
	legal := map[string]bool{}
	for a := range aliases {
		legal[a] = true
	}
	var names []string
	for _, o := range spec.Options {
		legal[o.Name] = true
		if _, isAlias := aliases[o.Name]; !isAlias {
			names = append(names, o.Name)
		}
	}
	for _, k := range sortedKeys(params) {
		if legal[k] {
			continue
		}
		if v.opts.IgnoreUnknown {
			delete(params, k)
			continue
		}
		name := strings.Join(append(append([]string{}, ctx...), k), ".")
		if _, seen := v.supported[name]; !seen { // a set in Python
			v.unsupported = append(v.unsupported, name)
		}
		sort.Strings(names)
		v.supported[name] = supportedNames{params: names, aliases: sortedKeys(aliases)}
	}
}

// unsupportedError words the unsupported parameters as AnsibleModule does.
// Python lists what the level of the last name it happens to iterate (in
// set order) supports; this takes the first name in sorted order.
func (v *validator) unsupportedError() string {
	names := append([]string{}, v.unsupported...)
	sort.Strings(names)
	sup := v.supported[names[0]]
	supported := strings.Join(sup.params, ", ")
	if len(sup.aliases) > 0 {
		supported += " (" + strings.Join(sup.aliases, ", ") + ")"
	}
	return fmt.Sprintf("Unsupported parameters for (%s) module: %s. Supported parameters include: %s.",
		v.opts.ModuleName, strings.Join(names, ", "), supported)
}

// countTerms is count_terms: how many distinct names of terms are keys of
// params (a null value counts).
func countTerms(terms []string, params map[string]any) int {
	seen := map[string]bool{}
	for _, t := range terms {
		if _, ok := params[t]; ok {
			seen[t] = true
		}
	}
	return len(seen)
}

func (v *validator) mutuallyExclusive(terms [][]string, params map[string]any, ctx []string) {
	var hits []string
	for _, check := range terms {
		if countTerms(check, params) > 1 {
			hits = append(hits, strings.Join(check, "|"))
		}
	}
	if len(hits) > 0 {
		v.fail("parameters are mutually exclusive: "+strings.Join(hits, ", "), ctx)
	}
}

// setDefaults is _set_defaults. The first pass (all false) fills only
// options with a default, so that required and the rules see them; the
// second fills the rest with null.
func (v *validator) setDefaults(spec *Spec, params map[string]any, all bool) {
	for _, o := range spec.Options {
		if _, ok := params[o.Name]; ok || (o.Default == nil && !all) {
			continue
		}
		def := normalize(o.Default)
		if o.NoLog && pyTruthy(def) {
			v.addNoLog(pyStr(def))
		}
		params[o.Name] = def
	}
}

func (v *validator) requiredArguments(spec *Spec, params map[string]any, ctx []string) {
	var missing []string
	for _, o := range spec.Options {
		if _, ok := params[o.Name]; o.Required && !ok {
			missing = append(missing, o.Name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		v.fail("missing required arguments: "+strings.Join(missing, ", "), ctx)
	}
}

// validateTypes is _validate_argument_types: a value that fails keeps its
// raw form (later checks see it), and list elements that fail are dropped.
func (v *validator) validateTypes(spec *Spec, params map[string]any, ctx []string) {
	for _, o := range spec.Options {
		value, ok := params[o.Name]
		if !ok || value == nil {
			continue
		}
		wanted := typeName(o.Type)
		check, _ := typeChecker(o.Type, v.opts.Getenv)
		coerced, err := check(value)
		if err == nil && o.Elements != "" {
			list, isList := coerced.([]any)
			if o.Type != TypeList || !isList {
				msg := fmt.Sprintf("Invalid type %s for option '%s'", wanted, pyStr(coerced))
				if len(ctx) > 0 {
					msg += fmt.Sprintf(" found in '%s'.", strings.Join(ctx, " -> "))
				}
				v.errors = append(v.errors, msg+", elements value check is supported only with 'list' type")
				list, err = pyIterate(coerced)
			}
			if err == nil {
				coerced = v.validateElements(o.Elements, o.Name, list, ctx)
			}
		}
		if err != nil {
			msg := fmt.Sprintf("argument '%s' is of type %s", o.Name, pyType(value))
			if len(ctx) > 0 {
				msg += fmt.Sprintf(" found in '%s'.", strings.Join(ctx, " -> "))
			}
			v.errors = append(v.errors, fmt.Sprintf("%s and we were unable to convert to %s: %s", msg, wanted, err))
			continue
		}
		params[o.Name] = coerced
	}
}

// pyIterate is iter(value) for the elements check of a non-list option.
func pyIterate(value any) ([]any, error) {
	switch x := value.(type) {
	case []any:
		return x, nil
	case string:
		out := []any{}
		for _, r := range x {
			out = append(out, string(r))
		}
		return out, nil
	case map[string]any:
		out := []any{}
		for _, k := range sortedKeys(x) {
			out = append(out, k)
		}
		return out, nil
	}
	return nil, fmt.Errorf("'%s' object is not iterable", pyClassName(value))
}

func (v *validator) validateElements(wanted Type, name string, values []any, ctx []string) []any {
	check, _ := typeChecker(wanted, v.opts.Getenv)
	out := []any{}
	for _, e := range values {
		c, err := check(e)
		if err == nil {
			out = append(out, c)
			continue
		}
		msg := fmt.Sprintf("Elements value for option '%s'", name)
		if len(ctx) > 0 {
			msg += fmt.Sprintf(" found in '%s'", strings.Join(ctx, " -> "))
		}
		v.errors = append(v.errors, fmt.Sprintf("%s is of type %s and we were unable to convert to %s: %s", msg, pyType(e), typeName(wanted), err))
	}
	return out
}

var boolStringsFalse = []any{"n", "no", "off", "0", "false", "f", 0}
var boolStringsTrue = []any{"y", "yes", "on", "1", "true", "t", 1}

// validateValues is _validate_argument_values (choices), including its
// mapping of a YAML-mangled "True"/"False" back to the one boolean-like
// choice.
func (v *validator) validateValues(spec *Spec, params map[string]any, ctx []string) {
	for _, o := range spec.Options {
		if o.Choices == nil {
			continue
		}
		value, ok := params[o.Name]
		if !ok {
			continue
		}
		choices := make([]string, len(o.Choices))
		for i, c := range o.Choices {
			choices[i] = pyStr(c)
		}
		if list, isList := value.([]any); isList {
			var diff []string
			for _, item := range list {
				if !pyIn(item, o.Choices) {
					diff = append(diff, pyStr(item))
				}
			}
			if len(diff) > 0 {
				v.fail(fmt.Sprintf("value of %s must be one or more of: %s. Got no match for: %s",
					o.Name, strings.Join(choices, ", "), strings.Join(diff, ", ")), ctx)
			}
			continue
		}
		if pyIn(value, o.Choices) {
			continue
		}
		if value == "False" {
			value = boolOverlap(value, boolStringsFalse, o.Choices)
		}
		if value == "True" {
			value = boolOverlap(value, boolStringsTrue, o.Choices)
		}
		params[o.Name] = value
		if !pyIn(value, o.Choices) {
			v.fail(fmt.Sprintf("value of %s must be one of: %s, got: %s", o.Name, strings.Join(choices, ", "), pyStr(value)), ctx)
		}
	}
}

// boolOverlap returns the only choice that is one of booleans, or value.
func boolOverlap(value any, booleans, choices []any) any {
	var overlap []any
	for _, c := range choices {
		if pyIn(c, booleans) && !pyIn(c, overlap) {
			overlap = append(overlap, c)
		}
	}
	if len(overlap) == 1 {
		return overlap[0]
	}
	return value
}

func pyIn(v any, list []any) bool {
	for _, e := range list {
		if pyEqual(v, e) {
			return true
		}
	}
	return false
}

// The four checks below raise, in Python, on the first failing rule only.

func (v *validator) requiredTogether(terms [][]string, params map[string]any, ctx []string) {
	for _, term := range terms {
		n := countTerms(term, params)
		if n > 0 && n < len(uniq(term)) {
			v.fail("parameters are required together: "+strings.Join(term, ", "), ctx)
			return
		}
	}
}

func uniq(terms []string) map[string]bool {
	m := map[string]bool{}
	for _, t := range terms {
		m[t] = true
	}
	return m
}

func (v *validator) requiredOneOf(terms [][]string, params map[string]any, ctx []string) {
	for _, term := range terms {
		if countTerms(term, params) == 0 {
			v.fail("one of the following is required: "+strings.Join(term, ", "), ctx)
			return
		}
	}
}

func (v *validator) requiredIf(reqs []RequiredIf, params map[string]any, ctx []string) {
	for _, r := range reqs {
		value, ok := params[r.Key]
		if !ok || !pyEqual(value, normalize(r.Value)) {
			continue
		}
		var missing []string
		for _, name := range r.Requirements {
			if _, ok := params[name]; !ok {
				missing = append(missing, name)
			}
		}
		requires, max := "all", 0
		if r.AnyOf {
			requires, max = "any", len(r.Requirements)
		}
		if len(missing) > 0 && len(missing) >= max {
			v.fail(fmt.Sprintf("%s is %s but %s of the following are missing: %s",
				r.Key, pyStr(normalize(r.Value)), requires, strings.Join(missing, ", ")), ctx)
			return
		}
	}
}

// requiredBy is check_required_by; unlike the others it treats a null
// value as missing. Keys are taken in sorted order (a Go map has none).
func (v *validator) requiredBy(reqs map[string][]string, params map[string]any, ctx []string) {
	for _, key := range sortedKeys(reqs) {
		if params[key] == nil {
			continue
		}
		var missing []string
		for _, name := range reqs[key] {
			if params[name] == nil {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			v.fail(fmt.Sprintf("missing parameter(s) required by '%s': %s", key, strings.Join(missing, ", ")), ctx)
			return
		}
	}
}

// subSpecs is _validate_sub_spec: every dict option, and every dict of a
// list option with elements dict, goes through the same steps with the
// option's name added to the context.
func (v *validator) subSpecs(spec *Spec, params map[string]any, prefix string, ctx []string) {
	for _, o := range spec.Options {
		value := params[o.Name]
		if o.Options == nil || value == nil || !hasSubOptions(o) {
			continue
		}
		sub := append(append([]string{}, ctx...), o.Name)
		elems, ok := value.([]any)
		if !ok {
			elems = []any{value}
		}
		for idx, e := range elems {
			m, ok := e.(map[string]any)
			if !ok {
				// Python would also try the fallbacks on it first, and
				// crash if it had to set one; there is nothing to set here.
				v.errors = append(v.errors, fmt.Sprintf("value of '%s' must be of type dict or list of dicts", o.Name))
				continue
			}
			v.fallbacks(o.Options, m)
			p := prefix + o.Name
			if o.Type == TypeList {
				p += fmt.Sprintf("[%d]", idx)
			}
			p += "."
			aliases, warnings := v.level(o.Options, m, p, sub)
			for _, w := range warnings {
				v.warnings = append(v.warnings, fmt.Sprintf("Both option %s%s and its alias %s%s are set.", p, w[0], p, w[1]))
			}
			// The module sees canonical names only.
			for a := range aliases {
				if !isOption(o.Options, a) {
					delete(m, a)
				}
			}
		}
	}
}

func isOption(spec *Spec, name string) bool {
	for _, o := range spec.Options {
		if o.Name == name {
			return true
		}
	}
	return false
}

// passwordMatch is basic.py's PASSWORD_MATCH; \s is widened to the
// Unicode whitespace Python's re matches.
var passwordMatch = regexp.MustCompile(`(?i)^(?:.+[-_\t\n\v\f\r\x1c-\x1f\x85\p{Z}])?pass(?:[-_\t\n\v\f\r\x1c-\x1f\x85\p{Z}]?(?:word|phrase|wrd|wd)?)(?:[-_\t\n\v\f\r\x1c-\x1f\x85\p{Z}].+)?$`)

// passwordWarnings is _log_invocation's warning for an option, or a given
// alias, whose name looks like a password and whose option lacks no_log.
// Python cannot tell "no_log: false" from no no_log here; Option.NoLog
// cannot either, so every such name is warned about.
func (v *validator) passwordWarnings(spec *Spec, params map[string]any, aliases map[string]string) {
	noLog := map[string]bool{}
	for _, o := range spec.Options {
		noLog[o.Name] = o.NoLog
		if !o.NoLog && passwordMatch.MatchString(o.Name) {
			v.warnings = append(v.warnings, "Module did not set no_log for "+o.Name)
		}
	}
	for _, a := range sortedKeys(aliases) {
		if _, given := params[a]; given && !noLog[aliases[a]] && !isOption(spec, a) && passwordMatch.MatchString(a) {
			v.warnings = append(v.warnings, "Module did not set no_log for "+a)
		}
	}
}
