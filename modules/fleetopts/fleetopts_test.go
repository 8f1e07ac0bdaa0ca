package fleetopts

import (
	"testing"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The defaults of the spec decode into the rules fleet.Build expects.
func TestDefaultsBecomeRules(t *testing.T) {
	vr := Spec().Validate(map[string]any{"target_version": "6.2.0.200", "cluster": "C1", "esxi_hostnames": []any{"esxi-01"}}, ansible.ValidateOptions{})
	require.Empty(t, vr.Errors)
	var o Options
	require.NoError(t, vr.Params.Decode(&o))
	r, err := o.Rules()
	require.NoError(t, err)
	assert.Equal(t, fleet.Rules{TargetVersion: "6.2.0.200", ProtectionServer: fleet.DefaultProtectionServer, LightAgent: fleet.DefaultLightAgent,
		MarkRole: vsphere.MarkRole, MarkVersion: vsphere.MarkVersion, RoleSVM: vsphere.RoleSVM, MarkHost: vsphere.MarkHost}, r)
	assert.Equal(t, vsphere.Scope{Cluster: "C1", Hosts: []string{"esxi-01"}}, o.Scope())
}

func TestRules(t *testing.T) {
	tests := map[string]struct {
		pattern   string
		wantMatch string
		wantErr   string
	}{
		"pattern compiled":             {pattern: "^svm-", wantMatch: "svm-esxi-01"},
		"bad pattern names the option": {pattern: "svm-(", wantErr: "svm_name_pattern is not a valid regular expression: error parsing regexp: missing closing ): `svm-(`"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := Options{SVMNamePattern: tc.pattern}.Rules()
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.True(t, r.SVMNamePattern.MatchString(tc.wantMatch))
		})
	}
	r, err := Options{}.Rules()
	require.NoError(t, err)
	assert.Nil(t, r.SVMNamePattern, "no pattern, no candidates")
}
