package kscsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// The simulator keeps its own small codec instead of importing the client's
// (internal/ksc): the simulator is what the client is tested against, and a
// shared codec would hide a wire-format mistake on both sides at once.

// long is a 64-bit KLOAPI integer; it goes on the wire as {"type":"long",...}.
type long int64

// binary is a KLOAPI binary value; on the wire {"type":"binary","value":"<b64>"}.
type binary []byte

const wireTime = "2006-01-02T15:04:05Z"

// params is a KLOAPI params container.
type params = map[string]any

// encode turns a Go value into its wire form. top is true for top-level
// arguments and return values, which carry params bare; nested params are
// wrapped as {"type":"params","value":...}.
func encode(v any, top bool) any {
	switch x := v.(type) {
	case params:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = encode(e, false)
		}
		if top {
			return m
		}
		return map[string]any{"type": "params", "value": m}
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = encode(e, false)
		}
		return a
	case []string:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = e
		}
		return a
	case long:
		return map[string]any{"type": "long", "value": int64(x)}
	case time.Time:
		return map[string]any{"type": "datetime", "value": x.UTC().Format(wireTime)}
	case binary:
		return map[string]any{"type": "binary", "value": base64.StdEncoding.EncodeToString(x)}
	default:
		return v
	}
}

// decodeBody parses a request body into top-level arguments with typed
// values unwrapped (params -> map, long -> long, datetime -> time.Time,
// integral numbers -> int64).
func decodeBody(body []byte) (params, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return params{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode request body: %w", err)
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("decode request body: top level is %T, want object", raw)
	}
	out := make(params, len(m))
	for k, v := range m {
		d, err := decodeValue(v)
		if err != nil {
			return nil, fmt.Errorf("decode argument %s: %w", k, err)
		}
		out[k] = d
	}
	return out, nil
}

func decodeValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, err
		}
		return f, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			d, err := decodeValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = d
		}
		return out, nil
	case map[string]any:
		if t, ok := x["type"].(string); ok && len(x) == 2 {
			if val, ok := x["value"]; ok {
				return decodeTyped(t, val)
			}
		}
		out := make(params, len(x))
		for k, e := range x {
			d, err := decodeValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = d
		}
		return out, nil
	default:
		return v, nil
	}
}

func decodeTyped(t string, val any) (any, error) {
	switch t {
	case "params":
		if val == nil {
			return params{}, nil
		}
		m, ok := val.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("params value is %T", val)
		}
		return decodeValue(m)
	case "long":
		n, ok := val.(json.Number)
		if !ok {
			return nil, fmt.Errorf("long value is %T", val)
		}
		i, err := n.Int64()
		if err != nil {
			return nil, fmt.Errorf("long value %s: %w", n, err)
		}
		return long(i), nil
	case "datetime":
		s, _ := val.(string)
		if val == nil || s == "" {
			return time.Time{}, nil
		}
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("datetime value: %w", err)
		}
		return tm, nil
	case "binary":
		s, _ := val.(string)
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("binary value: %w", err)
		}
		return binary(b), nil
	case "float", "double":
		n, ok := val.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s value is %T", t, val)
		}
		return n.Float64()
	default:
		return decodeValue(val)
	}
}

// PxgError codes. The real numeric values of STDE_* are not published
// (reference section 6: NOT FOUND); these are the lab's assumption. The
// not-found code is configurable (Config.NotFoundCode) because clients must
// not depend on it.
const (
	CodeBadParam        = 1101 // lab's stand-in for STDE_BADPARAM
	CodeNoAccess        = 1102 // lab's stand-in for STDE_NOACCESS
	CodeNotImplemented  = 1103 // lab's stand-in for STDE_NOTPERM ("unknown method")
	DefaultNotFoundCode = 1104 // lab's stand-in for STDE_NOTFOUND
)

// pxgError is a method-level failure; it goes out as HTTP 200 +
// {"PxgError":{...}} because KlAkOAPI expects method errors that way.
type pxgError struct {
	Code    int
	Message string
}

func (e *pxgError) Error() string { return fmt.Sprintf("KLSTD %d: %s", e.Code, e.Message) }

func badParam(format string, a ...any) *pxgError {
	return &pxgError{Code: CodeBadParam, Message: fmt.Sprintf(format, a...)}
}

func (e *pxgError) wire() map[string]any {
	return map[string]any{"PxgError": map[string]any{
		"code":    e.Code,
		"subcode": 0,
		"module":  "KLSTD",
		"file":    "kscsim.go",
		"line":    1,
		"message": e.Message,
		"locdata": map[string]any{"type": "params", "value": map[string]any{
			"format":    "%1",
			"format-id": e.Code,
			"locmodule": "KLSTD",
			"args":      []any{e.Message},
		}},
	}}
}

// Argument accessors: a missing or mistyped required argument is a
// BADPARAM PxgError, as a real server reports bad input.

func argString(a params, name string) (string, *pxgError) {
	v, ok := a[name]
	if !ok {
		return "", badParam("missing argument %s", name)
	}
	s, ok := v.(string)
	if !ok {
		return "", badParam("argument %s is %T, want string", name, v)
	}
	return s, nil
}

func argInt(a params, name string, def int64, required bool) (int64, *pxgError) {
	v, ok := a[name]
	if !ok || v == nil {
		if required {
			return 0, badParam("missing argument %s", name)
		}
		return def, nil
	}
	switch x := v.(type) {
	case int64:
		return x, nil
	case long:
		return int64(x), nil
	case float64:
		if x == math.Trunc(x) {
			return int64(x), nil
		}
	}
	return 0, badParam("argument %s is %T, want int", name, v)
}

func argBool(a params, name string) (bool, *pxgError) {
	v, ok := a[name]
	if !ok || v == nil {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, badParam("argument %s is %T, want bool", name, v)
	}
	return b, nil
}

func argStrings(a params, name string, required bool) ([]string, *pxgError) {
	v, ok := a[name]
	if !ok || v == nil {
		if required {
			return nil, badParam("missing argument %s", name)
		}
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, badParam("argument %s is %T, want array", name, v)
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, badParam("argument %s[%d] is %T, want string", name, i, e)
		}
		out = append(out, s)
	}
	return out, nil
}

func argParams(a params, name string) (params, *pxgError) {
	v, ok := a[name]
	if !ok || v == nil {
		return params{}, nil
	}
	m, ok := v.(params)
	if !ok {
		return nil, badParam("argument %s is %T, want params", name, v)
	}
	return m, nil
}
