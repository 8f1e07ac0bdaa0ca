package ansible

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
)

// Option values are the normalised JSON model: nil, bool, int, float64,
// string, []any, map[string]any. The type checks (check_type.go) and the
// Python semantics of their messages (python_values.go) work on it.

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
