package ansible

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/user"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// This file holds the type checkers of module_utils/common/validation.py
// (check_type_*) and the bits of Python semantics their messages depend on:
// str() and repr() of values, type(value), truthiness and ==. Values are the
// normalised JSON model: nil, bool, int, float64, string, []any,
// map[string]any.

// normalize deep-copies a decoded JSON value into the value model. JSON has
// one number type and encoding/json decodes every number as float64, so a
// whole float64 becomes int: that is what Python's json gives for "443",
// which is by far the common case (443.0 cannot be told apart). A
// json.Number keeps the distinction, as Python does. Copying also keeps the
// validator from writing into the caller's maps or into a spec's defaults.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int:
		return x
	case float64:
		return fromFloat(x)
	case float32:
		return fromFloat(float64(x))
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return int(i)
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil || errors.Is(err, strconv.ErrRange) {
			return f
		}
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt64 {
			return int(u)
		}
		return float64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return fromFloat(rv.Float())
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = normalize(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return v
		}
		if rv.IsNil() {
			return nil
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[it.Key().String()] = normalize(it.Value().Interface())
		}
		return out
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return normalize(rv.Elem().Interface())
	}
	return v
}

func fromFloat(f float64) any {
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return int(f)
	}
	return f
}

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

// pyStrip is str.strip() with no argument: Unicode whitespace as Python
// counts it (unicode.IsSpace plus the information separators).
func pyStrip(s string) string {
	return strings.TrimFunc(s, pyIsSpace)
}

func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyType is type(v) as Python prints it.
func pyType(v any) string {
	name := "object"
	switch v.(type) {
	case nil:
		name = "NoneType"
	case bool:
		name = "bool"
	case int:
		name = "int"
	case float64:
		name = "float"
	case string:
		name = "str"
	case []any:
		name = "list"
	case map[string]any:
		name = "dict"
	}
	return "<class '" + name + "'>"
}

// pyClassName is v.__class__.__name__.
func pyClassName(v any) string {
	t := pyType(v)
	return t[len("<class '") : len(t)-2]
}

// pyStr is str(v). Dict keys come out sorted: Python keeps the order of the
// JSON input, which a Go map has lost.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case float64:
		return pyFloat(x)
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := sortedKeys(x)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyRepr(k) + ": " + pyRepr(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// pyRepr is repr(v).
func pyRepr(v any) string {
	s, ok := v.(string)
	if !ok {
		return pyStr(v)
	}
	quote := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteRune(quote)
	for _, r := range s {
		switch {
		case r == quote || r == '\\':
			b.WriteRune('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteRune(quote)
	return b.String()
}

// pyFloat is repr(float): the shortest round-trip digits, in fixed notation
// for exponents -4..15 and in scientific notation outside.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// pyTruthy is bool(v).
func pyTruthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// pyEqual is ==: bools and numbers compare by value (True == 1 == 1.0).
func pyEqual(a, b any) bool {
	if fa, ok := pyNumber(a); ok {
		fb, ok := pyNumber(b)
		return ok && fa == fb
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !pyEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !pyEqual(e, f) {
				return false
			}
		}
		return true
	}
	return false
}

func pyNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case int:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pyLiteral is the part of ast.literal_eval that check_type_dict's
// fallback needs: dicts, lists, tuples, strings, numbers, True, False and
// None. Anything else (sets, bytes, complex, comments) is an error. Keys
// that are not strings are spelled as json.dumps spells them, since that is
// what the module would see.
func pyLiteral(s string) (any, error) {
	p := &litParser{src: []rune(s)}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.src) {
		return nil, errBadLiteral
	}
	return v, nil
}

var errBadLiteral = errors.New("malformed literal")

type litParser struct {
	src   []rune
	pos   int
	depth int
}

// maxLiteralDepth is the nesting Python's tokenizer allows (MAXLEVEL); it
// also bounds the recursion here.
const maxLiteralDepth = 200

func (p *litParser) space() {
	for p.pos < len(p.src) && strings.ContainsRune(" \t\n\r\f\v", p.src[p.pos]) {
		p.pos++
	}
}

func (p *litParser) peek() rune {
	p.space()
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *litParser) value() (any, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxLiteralDepth {
		return nil, errBadLiteral
	}
	switch c := p.peek(); {
	case c == '{':
		return p.dict()
	case c == '[':
		p.pos++
		return p.sequence(']')
	case c == '(':
		p.pos++
		return p.sequence(')')
	case c == '\'' || c == '"' || ((c == 'u' || c == 'U' || c == 'r' || c == 'R') && p.pos+1 < len(p.src) && (p.src[p.pos+1] == '\'' || p.src[p.pos+1] == '"')):
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		for { // adjacent literals concatenate
			if c := p.peek(); c != '\'' && c != '"' {
				return s, nil
			}
			more, err := p.str()
			if err != nil {
				return nil, err
			}
			s += more
		}
	case c == '+' || c == '-':
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case int:
			if c == '-' {
				return -x, nil
			}
			return x, nil
		case float64:
			if c == '-' {
				return -x, nil
			}
			return x, nil
		}
		return nil, errBadLiteral
	case c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	case unicode.IsLetter(c) || c == '_':
		start := p.pos
		for p.pos < len(p.src) && (unicode.IsLetter(p.src[p.pos]) || unicode.IsDigit(p.src[p.pos]) || p.src[p.pos] == '_') {
			p.pos++
		}
		switch string(p.src[start:p.pos]) {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		}
	}
	return nil, errBadLiteral
}

func (p *litParser) dict() (any, error) {
	p.pos++ // {
	out := map[string]any{}
	for {
		if p.peek() == '}' {
			p.pos++
			return out, nil
		}
		k, err := p.value()
		if err != nil {
			return nil, err
		}
		key, ok := jsonKey(k)
		if !ok || p.peek() != ':' {
			return nil, errBadLiteral
		}
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out[key] = v
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
		default:
			return nil, errBadLiteral
		}
	}
}

func (p *litParser) sequence(end rune) (any, error) {
	out := []any{}
	commas := 0
	for {
		if p.peek() == end {
			p.pos++
			if end == ')' && len(out) == 1 && commas == 0 {
				return out[0], nil // (x) is x, not a tuple
			}
			return out, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		switch p.peek() {
		case ',':
			p.pos++
			commas++
		case end:
		default:
			return nil, errBadLiteral
		}
	}
}

func jsonKey(k any) (string, bool) {
	switch x := k.(type) {
	case string:
		return x, true
	case nil:
		return "null", true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	case int, float64:
		if f, ok := x.(float64); ok {
			switch {
			case math.IsNaN(f):
				return "NaN", true
			case math.IsInf(f, 1):
				return "Infinity", true
			case math.IsInf(f, -1):
				return "-Infinity", true
			}
		}
		return pyStr(x), true
	}
	return "", false // lists are not hashable
}

func (p *litParser) str() (string, error) {
	raw := false
	for p.pos < len(p.src) && strings.ContainsRune("uUrR", p.src[p.pos]) {
		raw = raw || p.src[p.pos] == 'r' || p.src[p.pos] == 'R'
		p.pos++
	}
	quote := p.src[p.pos]
	p.pos++
	if p.pos+1 < len(p.src) && p.src[p.pos] == quote && p.src[p.pos+1] == quote {
		return "", errBadLiteral // triple-quoted strings are not supported
	}
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == quote:
			return b.String(), nil
		case c == '\n':
			return "", errBadLiteral
		case c == '\\' && p.pos < len(p.src):
			e := p.src[p.pos]
			p.pos++
			if raw {
				b.WriteRune('\\')
				b.WriteRune(e)
				continue
			}
			if err := p.escape(&b, e); err != nil {
				return "", err
			}
		default:
			b.WriteRune(c)
		}
	}
	return "", errBadLiteral
}

func (p *litParser) escape(b *strings.Builder, e rune) error {
	simple := map[rune]string{'\n': "", '\\': `\`, '\'': "'", '"': `"`, 'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v"}
	if s, ok := simple[e]; ok {
		b.WriteString(s)
		return nil
	}
	hex := map[rune]int{'x': 2, 'u': 4, 'U': 8}
	if n, ok := hex[e]; ok {
		if p.pos+n > len(p.src) {
			return errBadLiteral
		}
		r, err := strconv.ParseUint(string(p.src[p.pos:p.pos+n]), 16, 32)
		if err != nil || r > unicode.MaxRune {
			return errBadLiteral
		}
		p.pos += n
		b.WriteRune(rune(r))
		return nil
	}
	if e >= '0' && e <= '7' {
		r := e - '0'
		for i := 0; i < 2 && p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '7'; i++ {
			r = r*8 + p.src[p.pos] - '0'
			p.pos++
		}
		b.WriteRune(r)
		return nil
	}
	if e == 'N' {
		return errBadLiteral
	}
	b.WriteRune('\\') // unknown escapes stay as they are
	b.WriteRune(e)
	return nil
}

var (
	pyIntLiteral   = regexp.MustCompile(`^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|0(?:_?0)*|[1-9](?:_?[0-9])*)`)
	pyFloatLiteral = regexp.MustCompile(`^(?:(?:[0-9](?:_?[0-9])*)?\.[0-9](?:_?[0-9])*|[0-9](?:_?[0-9])*\.?)(?:[eE][+-]?[0-9](?:_?[0-9])*)?`)
)

func (p *litParser) number() (any, error) {
	rest := string(p.src[p.pos:])
	fl := pyFloatLiteral.FindString(rest)
	in := pyIntLiteral.FindString(rest)
	if len(in) >= len(fl) && in != "" {
		p.pos += len([]rune(in))
		i, err := strconv.ParseInt(strings.ReplaceAll(in, "_", ""), 0, 64)
		if err != nil {
			return nil, errBadLiteral
		}
		return p.numberEnd(int(i))
	}
	if fl == "" || !strings.ContainsAny(fl, ".eE") {
		return nil, errBadLiteral // "0443" is a syntax error in Python
	}
	p.pos += len([]rune(fl))
	f, err := strconv.ParseFloat(strings.ReplaceAll(fl, "_", ""), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, errBadLiteral
	}
	return p.numberEnd(f)
}

// numberEnd rejects "1j", "1abc" and the like.
func (p *litParser) numberEnd(v any) (any, error) {
	if p.pos < len(p.src) && (unicode.IsLetter(p.src[p.pos]) || unicode.IsDigit(p.src[p.pos]) || p.src[p.pos] == '_') {
		return nil, errBadLiteral
	}
	return v, nil
}
