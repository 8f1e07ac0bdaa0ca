package tests

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// Hostile input to the modules that talk to KSC and vCenter is refused at
// validation, in check mode and for real: the message names the option,
// KSC receives no call, vCenter keeps its VMs and the SVM its settings.
// (svm_deploy's and svm_klconfig's own suites cover their options.)
func TestHostileInputToKSCAndVCenterModules(t *testing.T) {
	ctx := faultCtx(t)
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: 1})
	v := l.Vars(l.Dir())
	host := v.ESXiHosts[0]
	const kscPw = "Pct%zzKsc\"Pw\\1"
	cases := []struct {
		module string
		args   map[string]any
		msg    string // prefix
	}{
		{"ksc_task", labtest.Args(kscArgs(v), map[string]any{"name": v.UpdateAgentsTask, "wait_timeout": -1}),
			"value of wait_timeout must be between 1 and 604800, got: -1"},
		{"ksc_task", labtest.Args(kscArgs(v), map[string]any{"name": v.UpdateAgentsTask, "poll_interval": -5}),
			"value of poll_interval must be between 0 and 3600, got: -5"},
		{"ksc_purge", labtest.Args(kscArgs(v), map[string]any{"names": []any{"svm-x"}, "timeout": 0}),
			"value of timeout must be between 1 and 604800, got: 0"},
		{"ksc_purge", labtest.Args(kscArgs(v), map[string]any{"names": []any{"svm-x"}, "ksc_ca_file": "/dev/null"}),
			"value of ksc_ca_file is invalid: /dev/null is not a regular file"},
		{"agent_facts", factsArgs(v, map[string]any{"timeout": -60}),
			"value of timeout must be between 1 and 604800, got: -60"},
		{"agent_facts", factsArgs(v, map[string]any{"port": 0}),
			"value of port must be between 1 and 65535, got: 0"},
		{"svm_remove", labtest.Args(removeArgs(v, host), map[string]any{"shutdown_timeout": -1}),
			"value of shutdown_timeout must be between 1 and 604800, got: -1"},
		{"svm_remove", labtest.Args(removeArgs(v, host), map[string]any{"port": 65536}),
			"value of port must be between 1 and 65535, got: 65536"},
		{"svm_remove", labtest.Args(removeArgs(v, host), map[string]any{"ca_file": "/dev/null"}),
			"value of ca_file is invalid: /dev/null is not a regular file"},
	}
	l.KSC().ResetCalls()
	before := l.Status()
	for _, tc := range cases {
		t.Run(tc.module+" "+tc.msg, func(t *testing.T) {
			for _, check := range []bool{true, false} {
				res := runModule(t, ctx, l, tc.module, tc.args, ansibletest.Mode{Check: check})
				require.True(t, res.Failed(), "check=%v", check)
				assert.False(t, res.Changed())
				assert.True(t, strings.HasPrefix(res.Msg(), tc.msg), "check=%v: %s", check, res.Msg())
			}
			assert.Empty(t, l.KSC().Calls(), "nothing reached KSC")
		})
	}
	assert.Equal(t, before, l.Status(), "vCenter, KSC and the SVMs as they were")

	// A KSC URL carrying credentials that do not parse: masked, never quoted.
	res := runModule(t, ctx, l, "ksc_task", labtest.Args(kscArgs(v), map[string]any{
		"name": v.UpdateAgentsTask, "ksc_url": "https://admin:" + kscPw + "@127.0.0.1:1"}), ansibletest.Mode{Check: true})
	require.True(t, res.Failed())
	assert.NotContains(t, res.Msg(), kscPw)
	assert.NotContains(t, ansibletest.Get(res, "invocation", "module_args", "ksc_url"), kscPw)

	// Certificate verification off: one warning naming the option.
	res = runModule(t, ctx, l, "agent_facts", factsArgs(v, map[string]any{"ksc_validate_certs": false, "ksc_ca_file": nil}), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	n := 0
	for _, w := range res["warnings"].([]any) {
		if strings.HasPrefix(w.(string), "ksc_validate_certs=false: ") {
			n++
		}
	}
	assert.Equal(t, 1, n, "%v", res["warnings"])
}
