package ksc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"
)

// Kind is the KLOAPI type of a Value.
type Kind int

// Value kinds. Int is a bare JSON integer (KLOAPI int); Long is
// {"type":"long",...}; both read through Value.Int.
const (
	Null Kind = iota
	String
	Int
	Long
	Float
	Bool
	DateTime
	Date
	Binary
	ParamsKind
	Array
)

// Value is one KLOAPI value decoded from JSON. It accepts both the plain
// forms (string, number, bool, array, null, bare object) and the typed
// wrapper {"type":T,"value":V}, recursively. The zero Value is Null.
type Value struct {
	kind Kind
	s    string // String, Date
	i    int64  // Int, Long
	f    float64
	b    bool
	t    time.Time
	bin  []byte
	m    Params
	a    []Value
}

// Params is a KLOAPI params container: attribute name -> value.
type Params map[string]Value

// wireTime is the KLOAPI datetime layout (UTC).
const wireTime = "2006-01-02T15:04:05Z"

// Kind returns the value's type.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether the value is null or absent.
func (v Value) IsNull() bool { return v.kind == Null }

// Str returns a string or date value, or "" for any other kind.
func (v Value) Str() string {
	if v.kind == String || v.kind == Date {
		return v.s
	}
	return ""
}

// Int returns an int or long value (a bool as 0/1, an integral float).
func (v Value) Int() (int64, bool) {
	switch v.kind {
	case Int, Long:
		return v.i, true
	case Bool:
		if v.b {
			return 1, true
		}
		return 0, true
	case Float:
		if v.f == float64(int64(v.f)) {
			return int64(v.f), true
		}
	}
	return 0, false
}

// Bool returns a bool value (an integer as non-zero).
func (v Value) Bool() (bool, bool) {
	switch v.kind {
	case Bool:
		return v.b, true
	case Int, Long:
		return v.i != 0, true
	}
	return false, false
}

// Time returns a datetime value; a null datetime is the zero time.
func (v Value) Time() (time.Time, bool) {
	if v.kind == DateTime {
		return v.t, true
	}
	return time.Time{}, false
}

// Bytes returns a binary value.
func (v Value) Bytes() []byte {
	if v.kind == Binary {
		return v.bin
	}
	return nil
}

// Params returns a params value (nil for other kinds).
func (v Value) Params() Params {
	if v.kind == ParamsKind {
		return v.m
	}
	return nil
}

// Array returns an array value.
func (v Value) Array() []Value {
	if v.kind == Array {
		return v.a
	}
	return nil
}

// Get returns the named attribute of a params value (Null if absent).
func (v Value) Get(key string) Value { return v.Params()[key] }

// String formats any value for messages and diffs.
func (v Value) String() string {
	switch v.kind {
	case Null:
		return "null"
	case String, Date:
		return v.s
	case Int, Long:
		return strconv.FormatInt(v.i, 10)
	case Float:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case Bool:
		return strconv.FormatBool(v.b)
	case DateTime:
		if v.t.IsZero() {
			return ""
		}
		return v.t.UTC().Format(wireTime)
	case Binary:
		return base64.StdEncoding.EncodeToString(v.bin)
	case ParamsKind:
		keys := make([]string, 0, len(v.m))
		for k := range v.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b bytes.Buffer
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %s", k, v.m[k])
		}
		b.WriteByte('}')
		return b.String()
	case Array:
		return fmt.Sprint(v.a)
	}
	return "?"
}

// Str, Int and Time on Params read one attribute, for terse row access.

// Str returns the string attribute key ("" if absent or not a string).
func (p Params) Str(key string) string { return p[key].Str() }

// Int returns the integer attribute key.
func (p Params) Int(key string) (int64, bool) { return p[key].Int() }

// Time returns the datetime attribute key.
func (p Params) Time(key string) (time.Time, bool) { return p[key].Time() }

// maxDepth bounds nesting while decoding, so hostile input cannot exhaust
// the stack (encoding/json itself allows 10000 levels).
const maxDepth = 200

// UnmarshalJSON decodes plain and typed forms.
func (v *Value) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("decode value: %w", err)
	}
	out, err := fromAny(raw, 0)
	if err != nil {
		return fmt.Errorf("decode value: %w", err)
	}
	*v = out
	return nil
}

// decodeResponse decodes a call's answer (a JSON object, or null) in one
// pass: json.Unmarshal into a Response would scan each value twice, once
// to find its end and again in Value.UnmarshalJSON, and a page of host
// rows is most of what a fleet read decodes.
func decodeResponse(data []byte) (Response, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid character after top-level value")
	}
	if raw == nil {
		return nil, nil
	}
	r := make(Response, len(raw))
	for k, e := range raw {
		v, err := fromAny(e, 0)
		if err != nil {
			return nil, fmt.Errorf("decode value: %w", err)
		}
		r[k] = v
	}
	return r, nil
}

func fromAny(raw any, depth int) (Value, error) {
	if depth > maxDepth {
		return Value{}, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	switch x := raw.(type) {
	case nil:
		return Value{}, nil
	case string:
		return Value{kind: String, s: x}, nil
	case bool:
		return Value{kind: Bool, b: x}, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return Value{kind: Int, i: i}, nil
		}
		f, err := x.Float64()
		if err != nil {
			return Value{}, fmt.Errorf("number %s: %w", x, err)
		}
		return Value{kind: Float, f: f}, nil
	case []any:
		a := make([]Value, len(x))
		for i, e := range x {
			d, err := fromAny(e, depth+1)
			if err != nil {
				return Value{}, err
			}
			a[i] = d
		}
		return Value{kind: Array, a: a}, nil
	case map[string]any:
		if t, ok := x["type"].(string); ok && len(x) == 2 {
			if val, ok := x["value"]; ok {
				if v, ok, err := typed(t, val, depth); ok || err != nil {
					return v, err
				}
			}
		}
		return paramsFrom(x, depth)
	}
	return Value{}, fmt.Errorf("unexpected JSON value %T", raw)
}

func paramsFrom(x map[string]any, depth int) (Value, error) {
	m := make(Params, len(x))
	for k, e := range x {
		d, err := fromAny(e, depth+1)
		if err != nil {
			return Value{}, err
		}
		m[k] = d
	}
	return Value{kind: ParamsKind, m: m}, nil
}

// typed unwraps {"type":t,"value":val}; ok is false for a type name it does
// not know, in which case the object is read as ordinary params.
func typed(t string, val any, depth int) (Value, bool, error) {
	str := func() (string, error) {
		if val == nil {
			return "", nil
		}
		s, ok := val.(string)
		if !ok {
			return "", fmt.Errorf("%s value is %T, want string", t, val)
		}
		return s, nil
	}
	switch t {
	case "params":
		if val == nil {
			return Value{kind: ParamsKind, m: Params{}}, true, nil
		}
		m, ok := val.(map[string]any)
		if !ok {
			return Value{}, true, fmt.Errorf("params value is %T, want object", val)
		}
		// The inner object is a container even if it happens to look
		// like a typed wrapper itself.
		v, err := paramsFrom(m, depth+1)
		return v, true, err
	case "long":
		n, ok := val.(json.Number)
		if !ok {
			return Value{}, true, fmt.Errorf("long value is %T, want number", val)
		}
		i, err := n.Int64()
		if err != nil {
			return Value{}, true, fmt.Errorf("long value %s: %w", n, err)
		}
		return Value{kind: Long, i: i}, true, nil
	case "datetime":
		s, err := str()
		if err != nil {
			return Value{}, true, err
		}
		if s == "" { // null and "" both mean "no time" (doc; KlAkOAPI)
			return Value{kind: DateTime}, true, nil
		}
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return Value{}, true, fmt.Errorf("datetime value %q: %w", s, err)
		}
		return Value{kind: DateTime, t: tm.UTC()}, true, nil
	case "date":
		s, err := str()
		return Value{kind: Date, s: s}, true, err
	case "binary":
		s, err := str()
		if err != nil {
			return Value{}, true, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return Value{}, true, fmt.Errorf("binary value: %w", err)
		}
		return Value{kind: Binary, bin: b}, true, nil
	case "float", "double":
		n, ok := val.(json.Number)
		if !ok {
			return Value{}, true, fmt.Errorf("%s value is %T, want number", t, val)
		}
		f, err := n.Float64()
		if err != nil {
			return Value{}, true, fmt.Errorf("%s value %s: %w", t, n, err)
		}
		return Value{kind: Float, f: f}, true, nil
	}
	return Value{}, false, nil
}

// MarshalJSON writes the wire form; params are wrapped, as everywhere but
// at the top level of a request (where callers pass a map).
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.kind {
	case Null:
		return []byte("null"), nil
	case String:
		return json.Marshal(v.s)
	case Int:
		return json.Marshal(v.i)
	case Float:
		return json.Marshal(v.f)
	case Bool:
		return json.Marshal(v.b)
	case Long:
		return json.Marshal(LongValue(v.i))
	case DateTime:
		return json.Marshal(DateTimeValue(v.t))
	case Date:
		return json.Marshal(typedJSON{"date", v.s})
	case Binary:
		return json.Marshal(typedJSON{"binary", base64.StdEncoding.EncodeToString(v.bin)})
	case ParamsKind:
		m := make(map[string]Value, len(v.m))
		for k, e := range v.m {
			m[k] = e
		}
		return json.Marshal(typedJSON{"params", m})
	case Array:
		if v.a == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(v.a)
	}
	return nil, fmt.Errorf("encode value: unknown kind %d", v.kind)
}

// typedJSON is the {"type":T,"value":V} wrapper.
type typedJSON struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// LongValue encodes n as a KLOAPI long (a bare number would be read as int).
func LongValue(n int64) any { return typedJSON{"long", n} }

// DateTimeValue encodes t as a KLOAPI datetime (UTC, second precision);
// the zero time is sent as null, which the doc allows.
func DateTimeValue(t time.Time) any {
	if t.IsZero() {
		return typedJSON{"datetime", nil}
	}
	return typedJSON{"datetime", t.UTC().Format(wireTime)}
}

// NestedParams wraps m as {"type":"params","value":m}, the form params take
// inside arrays and other params. Top-level arguments are passed bare.
func NestedParams(m map[string]any) any { return typedJSON{"params", m} }
