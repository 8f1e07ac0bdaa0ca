package modules

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible"
)

// TestOptionsAgreeWithSpecs checks, for every module, that the spec's
// option names, types and no_log flags are those of the options struct
// the runtime decodes into: the two are matched by json tags, by string.
func TestOptionsAgreeWithSpecs(t *testing.T) {
	for _, e := range Registry() {
		t.Run(e.Name, func(t *testing.T) {
			m := e.New()
			typ, ok := ansible.OptionsType(m)
			require.True(t, ok, "%s is not a typed module (ansible.Typed): its options are not checked", e.Name)
			assert.Empty(t, ansible.CheckOptions(m.Spec(), typ))
		})
	}
}
