package ansible

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// The type checkers of module_utils/common/validation.py (check_type_*):
// each coerces an option's value to its declared type or fails with
// AnsibleModule's words. A string read as a number is read as Python's
// int() and float() read it.

// typeChecker returns check_type_<wanted>; ok is false for a type
// AnsibleModule does not know.
func typeChecker(wanted Type, getenv func(string) (string, bool)) (check func(any) (any, error), ok bool) {
	switch wanted {
	case "", TypeStr:
		return checkStr, true
	case TypeBool:
		return checkBool, true
	case TypeInt:
		return checkInt, true
	case TypeFloat:
		return checkFloat, true
	case TypePath:
		return func(v any) (any, error) { return checkPath(v, getenv), nil }, true
	case TypeList:
		return checkList, true
	case TypeDict:
		return checkDict, true
	case TypeRaw:
		return func(v any) (any, error) { return v, nil }, true
	}
	// Python calls the missing validator (None) and reports the TypeError.
	return func(any) (any, error) { return nil, errors.New("'NoneType' object is not callable") }, false
}

func typeName(wanted Type) string {
	if wanted == "" {
		return string(TypeStr)
	}
	return string(wanted)
}

func checkStr(v any) (any, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	return pyStr(v), nil
}

func checkList(v any) (any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case string:
		parts := strings.Split(x, ",")
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	case int, float64, bool: // bool is an int in Python
		return []any{pyStr(x)}, nil
	}
	return nil, fmt.Errorf("%s cannot be converted to a list", pyType(v))
}

var (
	safeEvalCall   = regexp.MustCompile(`[\p{L}\p{N}_]\.[\p{L}\p{N}_]+\(`)
	safeEvalImport = regexp.MustCompile(`import [\p{L}\p{N}_]+`)
)

func checkDict(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		return x, nil
	case string:
		if strings.HasPrefix(x, "{") {
			dec := json.NewDecoder(strings.NewReader(x))
			dec.UseNumber()
			var out any
			if err := dec.Decode(&out); err == nil && !dec.More() {
				if _, err := dec.Token(); err != nil { // only EOF may follow
					return normalize(out), nil
				}
			}
			// safe_eval hands these back unevaluated, and check_type_dict
			// returns them as they are.
			if safeEvalCall.MatchString(x) || safeEvalImport.MatchString(x) {
				return x, nil
			}
			lit, err := pyLiteral(x)
			if err != nil {
				return nil, errors.New("unable to evaluate string as dictionary")
			}
			return lit, nil
		}
		if strings.Contains(x, "=") {
			return parseKeyValue(x)
		}
		return nil, errors.New("dictionary requested, could not parse JSON or key=value")
	}
	return nil, fmt.Errorf("%s cannot be converted to a dict", pyType(v))
}

// parseKeyValue is check_type_dict's "k=v, k2='v 2'" parser.
func parseKeyValue(s string) (any, error) {
	var fields []string
	var buf []rune
	var quote rune
	escape := false
	flush := func() {
		if len(buf) > 0 {
			fields = append(fields, string(buf))
		}
		buf = buf[:0]
	}
	for _, c := range pyStrip(s) {
		switch {
		case escape:
			buf = append(buf, c)
			escape = false
		case c == '\\':
			escape = true
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == ',' || c == ' '):
			flush()
		default:
			buf = append(buf, c)
		}
	}
	flush()
	out := make(map[string]any, len(fields))
	for i, f := range fields {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("dictionary update sequence element #%d has length 1; 2 is required", i)
		}
		out[k] = val
	}
	return out, nil
}

// boolChoices is BOOLEANS as Python prints the frozenset; Python's order
// changes with the hash seed, so this is the order under PYTHONHASHSEED=0.
const boolChoices = "0, 'y', 'true', 1, 'f', 'n', 'off', 't', '0', 'no', 'false', '1', 'on', 'yes'"

var (
	boolTrue  = map[string]bool{"y": true, "yes": true, "on": true, "1": true, "true": true, "t": true}
	boolFalse = map[string]bool{"n": true, "no": true, "off": true, "0": true, "false": true, "f": true}
)

func checkBool(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		n := strings.ToLower(pyStrip(x))
		if boolTrue[n] {
			return true, nil
		}
		if boolFalse[n] {
			return false, nil
		}
	case int, float64:
		if pyEqual(x, 1) {
			return true, nil
		}
		if pyEqual(x, 0) {
			return false, nil
		}
	default:
		return nil, fmt.Errorf("%s cannot be converted to a bool", pyType(v))
	}
	return nil, fmt.Errorf("The value '%s' is not a valid boolean.  Valid booleans include: %s", pyStr(v), boolChoices)
}

// checkInt differs from Python in two places: a bool becomes 1 or 0 (Python
// keeps True, which is an int there), and a number string beyond 64 bits is
// rejected (Python has big ints).
func checkInt(v any) (any, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		if i, ok := pyParseInt(x); ok {
			return i, nil
		}
	}
	return nil, fmt.Errorf("%s cannot be converted to an int", pyType(v))
}

var pyIntSyntax = regexp.MustCompile(`^[+-]?[0-9](?:_?[0-9])*$`)

// pyParseInt is int(str): surrounding whitespace, a sign, leading zeros and
// single underscores between digits are fine; "0x1f", "1.0", "1e3" are not.
func pyParseInt(s string) (int, bool) {
	s = asciiDigits(pyStrip(s))
	if !pyIntSyntax.MatchString(s) {
		return 0, false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	return int(i), err == nil
}

func checkFloat(v any) (any, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case bool:
		if x {
			return 1.0, nil
		}
		return 0.0, nil
	case string:
		if f, ok := pyParseFloat(x); ok {
			return f, nil
		}
	}
	return nil, fmt.Errorf("%s cannot be converted to a float", pyType(v))
}

var (
	pyFloatSyntax  = regexp.MustCompile(`^[+-]?(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)(?:[eE][+-]?[0-9](?:_?[0-9])*)?$`)
	pyFloatSpecial = regexp.MustCompile(`(?i)^[+-]?(?:inf|infinity|nan)$`)
)

// pyParseFloat is float(str); Go's ParseFloat alone would also take hex
// floats, which Python rejects.
func pyParseFloat(s string) (float64, bool) {
	s = asciiDigits(pyStrip(s))
	if !pyFloatSyntax.MatchString(s) && !pyFloatSpecial.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true
}

// checkPath is check_type_path: str, then os.path.expandvars, then
// os.path.expanduser, reading variables through getenv.
func checkPath(v any, getenv func(string) (string, bool)) string {
	s, _ := checkStr(v)
	return expandUser(expandVars(s.(string), getenv), getenv)
}

var varRef = regexp.MustCompile(`\$([A-Za-z0-9_]+|\{[^}]*\})`)

func expandVars(path string, getenv func(string) (string, bool)) string {
	if !strings.Contains(path, "$") {
		return path
	}
	i := 0
	for i <= len(path) {
		loc := varRef.FindStringSubmatchIndex(path[i:])
		if loc == nil {
			break
		}
		start, end := i+loc[0], i+loc[1]
		name := path[i+loc[2] : i+loc[3]]
		if strings.HasPrefix(name, "{") && strings.HasSuffix(name, "}") {
			name = name[1 : len(name)-1]
		}
		value, ok := "", false
		if getenv != nil {
			value, ok = getenv(name)
		}
		if !ok {
			i = end
			continue
		}
		tail := path[end:]
		path = path[:start] + value
		i = len(path)
		path += tail
	}
	return path
}

func expandUser(path string, getenv func(string) (string, bool)) string {
	if !strings.HasPrefix(path, "~") {
		return path
	}
	i := strings.Index(path[1:], "/") + 1
	if i == 0 {
		i = len(path)
	}
	var home string
	if i == 1 {
		h, ok := "", false
		if getenv != nil {
			h, ok = getenv("HOME")
		}
		if !ok {
			u, err := user.Current()
			if err != nil {
				return path
			}
			h = u.HomeDir
		}
		home = h
	} else {
		u, err := user.Lookup(path[1:i])
		if err != nil {
			return path
		}
		home = u.HomeDir
	}
	if out := strings.TrimRight(home, "/") + path[i:]; out != "" {
		return out
	}
	return "/"
}

// asciiDigits maps every Unicode decimal digit (Nd) to its ASCII digit, as
// int() and float() read them. Nd digits come in runs that start at a zero
// and are multiples of ten long, so a digit's value is its distance from
// the start of its run, modulo ten.
func asciiDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 || !unicode.IsDigit(r) {
			return r
		}
		start := r
		for unicode.IsDigit(start - 1) {
			start--
		}
		return '0' + (r-start)%10
	}, s)
}
