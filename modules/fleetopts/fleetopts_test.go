package fleetopts

import (
	"errors"
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
	vendor, err := fleet.ParseCompat(fleet.DefaultCompat)
	require.NoError(t, err)
	assert.Equal(t, fleet.Rules{TargetVersion: "6.2.0.200", ProtectionServer: fleet.DefaultProtectionServer, LightAgent: fleet.DefaultLightAgent,
		MarkRole: vsphere.MarkRole, MarkVersion: vsphere.MarkVersion, RoleSVM: vsphere.RoleSVM, Compat: vendor, MarkHost: vsphere.MarkHost,
		AgentSelection: fleet.SelectHypervisor}, r)
	assert.Equal(t, vsphere.Scope{Cluster: "C1", Hosts: []string{"esxi-01"}}, o.Scope())
}

func TestRules(t *testing.T) {
	tests := map[string]struct {
		target    string
		pattern   string
		wantMatch string
		wantErr   string
	}{
		"pattern compiled":             {pattern: "^svm-", wantMatch: "svm-esxi-01"},
		"bad pattern names the option": {pattern: "svm-(", wantErr: "svm_name_pattern is not a valid regular expression: error parsing regexp: missing closing ): `svm-(`"},
		"latest":                       {target: "latest", wantErr: `target_version must be a version of two to four dotted numbers such as 6.2.0.200, got "latest"`},
		"a v prefix":                   {target: "v6.2.0.200", wantErr: `target_version must be a version of two to four dotted numbers such as 6.2.0.200, got "v6.2.0.200"`},
		"a trailing space":             {target: "6.2.0.200 ", wantErr: `target_version must be a version of two to four dotted numbers such as 6.2.0.200, got "6.2.0.200 "`},
		"one number":                   {target: "6", wantErr: `target_version must be a version of two to four dotted numbers such as 6.2.0.200, got "6"`},
		"five numbers":                 {target: "6.2.0.200.1", wantErr: `target_version must be a version of two to four dotted numbers such as 6.2.0.200, got "6.2.0.200.1"`},
		"a line":                       {target: "6.2"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.target == "" {
				tc.target = "6.2.0.200"
			}
			r, err := Options{TargetVersion: tc.target, SVMNamePattern: tc.pattern}.Rules()
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.pattern != "" {
				assert.True(t, r.SVMNamePattern.MatchString(tc.wantMatch))
			}
		})
	}
	r, err := Options{TargetVersion: "6.2.0.200"}.Rules()
	require.NoError(t, err)
	assert.Nil(t, r.SVMNamePattern, "no pattern, no candidates")
}

// A malformed table fails validation-time decoding with an error that
// names the option and the entry; a valid one replaces the defaults.
func TestCompatibilityOption(t *testing.T) {
	tests := map[string]struct {
		compat  any
		wantErr string
		serves  [3]string // ps, product, agent that the table must serve
	}{
		"site table replaces the defaults": {compat: map[string]any{"6.2": map[string]any{"KES": []any{"12.6"}, "kesl": "12.2"}},
			serves: [3]string{"6.2.0.200", "kes", "12.6.0.1"}},
		"unquoted number":      {compat: map[string]any{"6.2": map[string]any{"kesl": []any{12.2}}}, wantErr: `compatibility: 6.2 -> kesl: version 12.2 is not a string (quote it: "12.2")`},
		"agents not a mapping": {compat: map[string]any{"6.2": "12.2"}, wantErr: "compatibility: 6.2 must map agent products to lists of agent versions"},
		"not a dict at all":    {compat: "6.2=12.2", wantErr: "compatibility"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			vr := Spec().Validate(map[string]any{"target_version": "6.2.0.200", "compatibility": tc.compat}, ansible.ValidateOptions{})
			var err error
			var r fleet.Rules
			if len(vr.Errors) > 0 {
				err = errors.New(vr.Errors[0])
			} else {
				var o Options
				require.NoError(t, vr.Params.Decode(&o))
				r, err = o.Rules()
			}
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.True(t, r.Compat.Serves(fleet.Version(tc.serves[0]), fleet.Product{Key: tc.serves[1]}, fleet.Version(tc.serves[2])))
			assert.False(t, r.Compat.Knows("6.1.0.100"), "the vendor's rows are replaced, not merged")
		})
	}
}
