package ansible

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
)

type agreeBase struct {
	Password string `json:"password" ansible:"no_log"`
}

type agreeItem struct {
	Name string `json:"name"`
}

type agreeOptions struct {
	agreeBase
	Name    string            `json:"name"`
	Count   int               `json:"count"`
	Items   []agreeItem       `json:"items"`
	Tags    map[string]string `json:"tags"`
	Extra   any               `json:"extra"`
	ignored int
}

func agreeSpec() Spec {
	return Spec{Options: []Option{
		{Name: "password", NoLog: true},
		{Name: "name"},
		{Name: "count", Type: TypeInt},
		{Name: "items", Type: TypeList, Elements: TypeDict, Options: &Spec{Options: []Option{{Name: "name"}}}},
		{Name: "tags", Type: TypeDict},
		{Name: "extra", Type: TypeRaw},
	}}
}

func TestCheckOptions(t *testing.T) {
	_ = agreeOptions{}.ignored
	typ := reflect.TypeFor[agreeOptions]()
	with := func(edit func(*Spec)) Spec {
		s := agreeSpec()
		s.Options = append([]Option{}, s.Options...)
		sub := *s.Options[3].Options
		sub.Options = append([]Option{}, sub.Options...)
		s.Options[3].Options = &sub
		edit(&s)
		return s
	}
	tests := []struct {
		name string
		spec Spec
		want []string
	}{
		{"agree", agreeSpec(), nil},
		{"renamed option", with(func(s *Spec) { s.Options[1].Name = "title" }),
			[]string{"field name has no option", `option title has no field with json tag "title"`}},
		{"no_log dropped", with(func(s *Spec) { s.Options[0].NoLog = false }),
			[]string{`option password: no_log is false in the spec but the field's ansible:"no_log" tag says true`}},
		{"wrong type", with(func(s *Spec) { s.Options[2].Type = TypeBool }),
			[]string{"option count (bool): field type int is not a bool"}},
		{"sub-option", with(func(s *Spec) { s.Options[3].Options.Options[0].Name = "label" }),
			[]string{"field items.name has no option", `option items.label has no field with json tag "label"`}},
		{"list of str into ints", with(func(s *Spec) { s.Options[3].Elements = TypeStr; s.Options[3].Options = nil }),
			[]string{"option items (list): field type []ansible.agreeItem has elements of type ansible.agreeItem that is not a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, CheckOptions(tt.spec, typ))
		})
	}
}
