package ansible

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// CheckOptions compares a spec with the options struct it decodes into:
// every option has a field of its json name and a Go type that holds its
// type, every field has an option, and a field tagged `ansible:"no_log"`
// is exactly a no_log option. Options and fields are matched by string
// (json tags), so without this check a renamed option decodes to a zero
// value and nothing says so. It returns one line per disagreement.
func CheckOptions(spec Spec, t reflect.Type) []string {
	var out []string
	check(spec, t, "", &out)
	sort.Strings(out)
	return out
}

type optField struct {
	typ   reflect.Type
	noLog bool
}

func check(spec Spec, t reflect.Type, prefix string, out *[]string) {
	fields := map[string]optField{}
	collectFields(deref(t), fields)
	seen := map[string]bool{}
	for _, o := range spec.Options {
		name := prefix + o.Name
		seen[o.Name] = true
		f, ok := fields[o.Name]
		if !ok {
			*out = append(*out, fmt.Sprintf("option %s has no field with json tag %q", name, o.Name))
			continue
		}
		if f.noLog != o.NoLog {
			*out = append(*out, fmt.Sprintf("option %s: no_log is %t in the spec but the field's ansible:\"no_log\" tag says %t", name, o.NoLog, f.noLog))
		}
		if msg := holds(o, f.typ); msg != "" {
			*out = append(*out, fmt.Sprintf("option %s (%s): field type %s %s", name, typeOf(o), f.typ, msg))
			continue
		}
		if o.Options != nil {
			el := deref(f.typ)
			if el.Kind() == reflect.Slice {
				el = deref(el.Elem())
			}
			if el.Kind() == reflect.Struct {
				check(*o.Options, el, name+".", out)
			}
		}
	}
	for name := range fields {
		if !seen[name] {
			*out = append(*out, fmt.Sprintf("field %s%s has no option", prefix, name))
		}
	}
}

// collectFields flattens t's fields as encoding/json does: untagged
// embedded structs lend their fields to the outer one.
func collectFields(t reflect.Type, into map[string]optField) {
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			collectFields(deref(f.Type), into)
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		into[name] = optField{typ: f.Type, noLog: f.Tag.Get("ansible") == "no_log"}
	}
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func typeOf(o Option) Type {
	if o.Type == "" {
		return TypeStr
	}
	return o.Type
}

// holds says why Go type t cannot hold values of option o ("" when it can).
func holds(o Option, t reflect.Type) string {
	t = deref(t)
	if t.Kind() == reflect.Interface {
		return "" // any holds every type
	}
	switch typeOf(o) {
	case TypeStr, TypePath:
		if t.Kind() != reflect.String {
			return "is not a string"
		}
	case TypeBool:
		if t.Kind() != reflect.Bool {
			return "is not a bool"
		}
	case TypeInt:
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		default:
			return "is not an int"
		}
	case TypeFloat:
		if t.Kind() != reflect.Float64 && t.Kind() != reflect.Float32 {
			return "is not a float"
		}
	case TypeList:
		if t.Kind() != reflect.Slice {
			return "is not a slice"
		}
		if o.Elements != "" {
			if msg := holds(Option{Type: o.Elements}, t.Elem()); msg != "" && !(o.Elements == TypeDict && deref(t.Elem()).Kind() == reflect.Struct) {
				return "has elements of type " + t.Elem().String() + " that " + msg
			}
		}
	case TypeDict:
		if t.Kind() != reflect.Map && t.Kind() != reflect.Struct {
			return "is not a map or struct"
		}
	case TypeRaw:
		return "is not any (raw options take every type)"
	}
	return ""
}
