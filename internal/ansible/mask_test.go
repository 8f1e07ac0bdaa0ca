package ansible

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMasker(t *testing.T) {
	tests := map[string]struct {
		secrets []string
		in      any
		want    any
	}{
		"exact string":         {[]string{"s3cret"}, "s3cret", "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"},
		"substring":            {[]string{"s3cret"}, "login with s3cret failed", "login with ******** failed"},
		"longest first":        {[]string{"abc", "abcdef"}, "x abcdef y", "x ******** y"},
		"no secrets":           {nil, "s3cret", "s3cret"},
		"empty secret ignored": {[]string{""}, "anything", "anything"},
		"booleans kept":        {[]string{"true"}, true, true},
		"number as secret":     {[]string{"1234"}, int64(1234), "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"},
		"float untouched":      {[]string{"s"}, 1.5, 1.5},
		"nested map and keys": {
			[]string{"pw"},
			map[string]any{"pw": "x", "a": []any{"pw", map[string]any{"b": "my pw"}}},
			map[string]any{"VALUE_SPECIFIED_IN_NO_LOG_PARAMETER": "x", "a": []any{"VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", map[string]any{"b": "my ********"}}},
		},
		"nil kept": {[]string{"x"}, nil, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := NewMasker(tc.secrets...).Value(tc.in)
			assert.Equal(t, tc.want, got)
		})
	}
}

func BenchmarkMaskResult(b *testing.B) {
	m := NewMasker("hunter2-very-secret", "another-secret")
	res := map[string]any{"msg": "done", "svm": map[string]any{"name": "svm-01", "ip": "10.0.0.1", "marks": map[string]any{"a": "b"}}}
	list := make([]any, 200)
	for i := range list {
		list[i] = map[string]any{"name": "vm", "host": "esxi-01", "version": "6.2.0.400", "note": "uses hunter2-very-secret here"}
	}
	res["agents"] = list
	b.ReportAllocs()
	for b.Loop() {
		m.Value(res)
	}
}
