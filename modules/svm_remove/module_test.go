package svmremove

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func labArgs(l *sim.Lab) map[string]any { return labtest.FleetModuleArgs(l.Vars(l.Dir())) }

// vms lists the lab's VMs by name, with their moid.
func vms(t *testing.T, s *vsphere.Session) map[string]string {
	t.Helper()
	list, err := s.Inventory(context.Background(), vsphere.Scope{})
	require.NoError(t, err)
	out := map[string]string{}
	for _, v := range list {
		out[v.Name] = v.Moid
	}
	return out
}

func oldSVM(l *sim.Lab, i int) string { return l.VCenter().Inventory().Hosts[i].OldSVM }
func protectedVM(l *sim.Lab, i int) string {
	return l.VCenter().Inventory().Hosts[i].ProtectedVMs[0]
}

func listNames(v any, key string) []string {
	out := []string{}
	l, _ := v.([]any)
	for _, e := range l {
		out = append(out, ansibletest.Get(e, key).(string))
	}
	return out
}

func assertNoSecrets(t *testing.T, l *sim.Lab, res ansible.Result) {
	t.Helper()
	raw, err := json.Marshal(res)
	require.NoError(t, err)
	v := l.Vars(l.Dir())
	assert.NotContains(t, string(raw), v.VCenterPassword)
	assert.NotContains(t, string(raw), v.KSCPassword)
}

// A 3-host lab mid-upgrade: host 1 ready (new SVM, agents updated),
// host 2 with its new SVM but agents still old, host 3 untouched. Every
// refusal happens in check mode and in apply mode alike and touches
// nothing.
func TestGatesBlock(t *testing.T) {
	// Protected VMs held on their hosts: each host's gates see its own
	// agents only (drs_test.go has DRS moving them).
	l := labtest.Start(t, sim.Config{Hosts: 3, VMsPerHost: 1, ProtectedVMsStay: true})
	s := labtest.VSphere(t, l)
	hosts := l.Vars(l.Dir()).ESXiHosts
	labtest.DeployNewSVM(t, l, s, hosts[0])
	labtest.UpdateAgents(t, l)
	labtest.DeployNewSVM(t, l, s, hosts[1])
	ctx := context.Background()
	args := labArgs(l)
	before := vms(t, s)

	const gates = "refusing to remove any SVM: "
	noReplacement := oldSVM(l, 2) + " on esxi-03.lab.local (6.1.0.100): "
	tests := map[string]struct {
		change      map[string]any
		wantMsg     string
		wantBlocked []string
		wantWarning string
	}{
		"no new SVM on the host: replacement and last-SVM gates (and its agents)": {
			change: map[string]any{"name": oldSVM(l, 2)},
			wantMsg: gates + "1 selected SVM(s) blocked by safety gates: " + noReplacement +
				"no_agent_needs_it: 1 Light Agent(s) on esxi-03.lab.local still need it: vm-esxi-03-001 (KES 12.5.0.100); " +
				"replacement_running: no powered-on SVM of version 6.2.0.200 on esxi-03.lab.local; " +
				"replacement_prepared: no powered-on SVM of the target version on esxi-03.lab.local to prepare; " +
				"not_last_svm: svm-esxi-03-6.1 is the last SVM on esxi-03.lab.local",
			wantBlocked: []string{oldSVM(l, 2)},
		},
		"new SVM not prepared, agents not updated: agent and preparation gates name them": {
			change: map[string]any{"name": oldSVM(l, 1)},
			wantMsg: gates + "1 selected SVM(s) blocked by safety gates: svm-esxi-02-6.1 on esxi-02.lab.local (6.1.0.100): " +
				"no_agent_needs_it: 1 Light Agent(s) on esxi-02.lab.local still need it: vm-esxi-02-001 (KES 12.5.0.100); " +
				"replacement_prepared: svm-esxi-02-6.2 (6.2.0.200) is not activated and has no databases in KSC: run the activation and database update tasks first",
			wantBlocked: []string{oldSVM(l, 1)},
		},
		"force skips only the agent gate: still blocked without a replacement": {
			change: map[string]any{"name": oldSVM(l, 2), "force": true},
			wantMsg: gates + "1 selected SVM(s) blocked by safety gates: " + noReplacement +
				"replacement_running: no powered-on SVM of version 6.2.0.200 on esxi-03.lab.local; " +
				"not_last_svm: svm-esxi-03-6.1 is the last SVM on esxi-03.lab.local",
			wantBlocked: []string{oldSVM(l, 2)},
			wantWarning: "force=true: the Light Agent, preparation and unknown-VM gates are skipped; the replacement and last-SVM gates still apply",
		},
		"by version: hosts not ready block the ready one too, each named": {
			change:      map[string]any{"version": "6.1.0.100"},
			wantMsg:     gates + "2 selected SVM(s) blocked by safety gates: svm-esxi-02-6.1 on esxi-02.lab.local",
			wantBlocked: []string{oldSVM(l, 1), oldSVM(l, 2)},
		},
		"a protected VM in the selection": {
			change:  map[string]any{"names": []any{oldSVM(l, 0), protectedVM(l, 0)}},
			wantMsg: "refusing to remove anything: vm-esxi-01-001 on esxi-01.lab.local is not an SVM: it is a protected VM with Light Agent 12.6.0.200",
		},
		"a name outside the scope": {
			change:  map[string]any{"name": oldSVM(l, 2), "esxi_hostnames": []any{hosts[0]}},
			wantMsg: "refusing to remove anything: svm-esxi-03-6.1 is outside the scope (on esxi-03.lab.local)",
		},
		"no KSC options and no force": {
			change:  map[string]any{"name": oldSVM(l, 0), "ksc_url": nil, "ksc_username": nil, "ksc_password": nil},
			wantMsg: "the Light Agent gate needs KSC: set ksc_url, ksc_username and ksc_password (or export KSC_URL, KSC_USERNAME, KSC_PASSWORD), or set force=true to remove without checking Light Agents",
		},
		"two selectors": {
			change:  map[string]any{"name": oldSVM(l, 0), "version": "6.1.0.100"},
			wantMsg: "parameters are mutually exclusive: name|names|version",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, mode := range []ansibletest.Mode{{Check: true, Diff: true}, {Diff: true}} {
				res := ansibletest.Run(t, ctx, "svm_remove", New(), labtest.Args(args, tc.change), mode)
				require.True(t, res.Failed(), "check=%v: %v", mode.Check, res)
				if tc.wantBlocked != nil {
					assert.Contains(t, res.Msg(), tc.wantMsg)
					assert.Equal(t, tc.wantBlocked, listNames(ansibletest.Get(res, "blocked"), "name"))
					assert.Empty(t, ansibletest.Get(res, "removed"))
				} else {
					assert.Equal(t, tc.wantMsg, res.Msg())
				}
				if tc.wantWarning != "" {
					assert.Contains(t, ansibletest.Get(res, "warnings"), tc.wantWarning)
				}
				assertNoSecrets(t, l, res)
			}
		})
	}
	assert.Equal(t, before, vms(t, s), "a refused run touches nothing")

	// force lets the agent gate pass, with a warning; check mode only, as
	// applying it would leave host 2's old agents unprotected.
	res := ansibletest.Run(t, ctx, "svm_remove", New(), labtest.Args(args, map[string]any{"name": oldSVM(l, 1), "force": true}), ansibletest.Mode{Check: true})
	require.False(t, res.Failed(), res.Msg())
	assert.True(t, res.Changed())
	assert.Equal(t, true, ansibletest.Get(res, "removed", 0, "would_remove"))
	assert.Equal(t, true, ansibletest.Get(res, "removed", 0, "gates", 0, "skipped"))
	assert.Contains(t, ansibletest.Get(res, "warnings"),
		"force=true: svm-esxi-02-6.1 on esxi-02.lab.local passes although 1 Light Agent(s) on esxi-02.lab.local still need it: vm-esxi-02-001 (KES 12.5.0.100)")

	// force without KSC: SVMs are recognised by their marks alone.
	res = ansibletest.Run(t, ctx, "svm_remove", New(), labtest.Args(args, map[string]any{"name": oldSVM(l, 0), "force": true,
		"ksc_url": nil, "ksc_username": nil, "ksc_password": nil}), ansibletest.Mode{Check: true})
	require.False(t, res.Failed(), res.Msg())
	assert.Equal(t, "would remove 1 SVM(s): svm-esxi-01-6.1 (6.1.0.100 on esxi-01.lab.local)", res.Msg())
	assert.Empty(t, ansibletest.Get(res, "removed", 0, "ksc_id"))

	assert.Equal(t, before, vms(t, s))
	assert.Empty(t, l.Gaps())
}

// A fully upgraded host: check mode predicts, apply removes, the next run
// finds it absent.
func TestRemoveUpgradedHost(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 2, ProtectedVMsStay: true}) // host 2's agents cannot arrive
	s := labtest.VSphere(t, l)
	hosts := l.Vars(l.Dir()).ESXiHosts
	newSVM := labtest.DeployNewSVM(t, l, s, hosts[0])
	labtest.UpdateAgents(t, l)
	ctx := context.Background()
	old := oldSVM(l, 0)
	args := labtest.Args(labArgs(l), map[string]any{"name": old})
	beforeDiff := map[string]any{"svms": []any{map[string]any{"name": old, "host": hosts[0], "version": "6.1.0.100", "power_state": "poweredOn"}}}
	afterDiff := map[string]any{"svms": []any{}}

	res := ansibletest.Run(t, ctx, "svm_remove", New(), args, ansibletest.Mode{Check: true, Diff: true})
	require.False(t, res.Failed(), res.Msg())
	assert.True(t, res.Changed())
	assert.Equal(t, "would remove 1 SVM(s): svm-esxi-01-6.1 (6.1.0.100 on esxi-01.lab.local)", res.Msg())
	assert.Equal(t, map[string]any{"before": beforeDiff, "after": afterDiff}, ansibletest.Get(res, "diff"))
	assert.Equal(t, true, ansibletest.Get(res, "removed", 0, "would_remove"))
	assert.Equal(t, []any{
		map[string]any{"name": fleet.GateAgents, "passed": true, "reason": "no Light Agent on esxi-01.lab.local needs Protection Server 6.1.0.100"},
		map[string]any{"name": fleet.GateReplacement, "passed": true, "reason": newSVM + " (6.2.0.200) runs on esxi-01.lab.local"},
		ansibletest.Get(res, "removed", 0, "gates", 2), // its databases date is the lab's clock
		map[string]any{"name": fleet.GateNotLast, "passed": true, "reason": "1 other SVM(s) on esxi-01.lab.local"},
		map[string]any{"name": fleet.GateUnknownVMs, "passed": true, "reason": "every other VM on esxi-01.lab.local is an SVM, a Light Agent KSC lists with its version, or listed in not_protected_vms"},
	}, ansibletest.Get(res, "removed", 0, "gates"))
	assert.Contains(t, vms(t, s), old, "check mode changes nothing")

	res = ansibletest.Run(t, ctx, "svm_remove", New(), args, ansibletest.Mode{Diff: true})
	require.False(t, res.Failed(), res.Msg())
	assert.True(t, res.Changed())
	assert.Equal(t, "removed 1 SVM(s): svm-esxi-01-6.1 (6.1.0.100 on esxi-01.lab.local)", res.Msg())
	assert.Equal(t, map[string]any{"before": beforeDiff, "after": afterDiff}, ansibletest.Get(res, "diff"))
	assert.Equal(t, old, ansibletest.Get(res, "removed", 0, "name"))
	assert.Equal(t, old, ansibletest.Get(res, "removed", 0, "ksc_name"))
	assert.Equal(t, old+".lab.local", ansibletest.Get(res, "removed", 0, "fqdn"))
	assert.NotEmpty(t, ansibletest.Get(res, "removed", 0, "ksc_id"))
	assert.NotEmpty(t, ansibletest.Get(res, "removed", 0, "ip"))
	assert.Nil(t, ansibletest.Get(res, "removed", 0, "would_remove"))
	assertNoSecrets(t, l, res)
	after := vms(t, s)
	assert.NotContains(t, after, old, "the VM is gone from vCenter")
	assert.Contains(t, after, oldSVM(l, 1), "the other host's SVM stays")

	res = ansibletest.Run(t, ctx, "svm_remove", New(), args, ansibletest.Mode{Diff: true})
	require.False(t, res.Failed(), res.Msg())
	assert.False(t, res.Changed())
	assert.Equal(t, []any{old}, ansibletest.Get(res, "absent"))
	assert.Empty(t, ansibletest.Get(res, "removed"))
	assert.Nil(t, ansibletest.Get(res, "diff"))

	require.NoError(t, l.Sync(ctx))
	assert.Empty(t, l.Gaps())
}

// Apply observes the fleet again before each removal: a plan that went
// stale (here: forged for an SVM whose gates block, after an SVM vanished)
// touches nothing that no longer passes.
func TestApplyRechecksGates(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: 1})
	s := labtest.VSphere(t, l)
	ctx := context.Background()
	before := vms(t, s)
	old := oldSVM(l, 0)

	vr := spec().Validate(labtest.Args(labArgs(l), map[string]any{"names": []any{"ghost", old}}), ansible.ValidateOptions{})
	require.Empty(t, vr.Errors)
	c := &call{Params: vr.Params, Response: &ansible.Response{}}
	require.NoError(t, vr.Params.Decode(&c.Options))
	m := &module{}
	defer m.Close(ctx)
	_, err := m.Observe(ctx, c) // as a run does before Apply
	require.NoError(t, err)
	stale := &Plan{Remove: []Item{
		{Name: "ghost", Moid: "vm-999999", Host: "esxi-01.lab.local"},
		{Name: old, Moid: before[old], Host: "esxi-01.lab.local"},
	}}
	err = m.Apply(ctx, c, stale)
	require.Error(t, err)
	assert.Equal(t, "svm-esxi-01-6.1 on esxi-01.lab.local blocked by safety gates at removal time: "+
		"no_agent_needs_it: 1 Light Agent(s) on esxi-01.lab.local still need it: vm-esxi-01-001 (KES 12.5.0.100); "+
		"replacement_running: no powered-on SVM of version 6.2.0.200 on esxi-01.lab.local; "+
		"replacement_prepared: no powered-on SVM of the target version on esxi-01.lab.local to prepare; "+
		"not_last_svm: svm-esxi-01-6.1 is the last SVM on esxi-01.lab.local; not touched, nor: none", err.Error())
	report := stale.Report()
	assert.Equal(t, []string{"ghost"}, report["absent"], "an SVM gone meanwhile is absent")
	assert.Empty(t, report["removed"])
	blocked, _ := report["blocked"].([]Blocked)
	require.Len(t, blocked, 1, "the SVM blocked at removal time")
	assert.Equal(t, old, blocked[0].Name)
	assert.Equal(t, before, vms(t, s))
	assert.Empty(t, l.Gaps())
}

// KSC's retention removed the record of a protected VM while it was
// powered off: the agent update missed it and KSC no longer lists it. The
// gate counts it from vCenter and refuses, naming it; listed in
// not_protected_vms (here wrongly, to show what the gate prevents) the
// removal goes through and the VM powers on to a protection gap.
func TestUnknownVMBlocksRemoval(t *testing.T) {
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: 2})
	s := labtest.VSphere(t, l)
	ctx := context.Background()
	host := l.Vars(l.Dir()).ESXiHosts[0]
	asleep := protectedVM(l, 0)
	vm, err := s.VM(ctx, nil, asleep)
	require.NoError(t, err)
	require.NoError(t, s.PowerOff(ctx, vm))
	require.NoError(t, l.Sync(ctx))
	labtest.DeployNewSVM(t, l, s, host)
	labtest.UpdateAgents(t, l)
	for _, h := range l.KSC().FindByName(asleep) {
		l.KSC().RemoveHostRecord(h.ID)
	}
	old := oldSVM(l, 0)
	args := labtest.Args(labArgs(l), map[string]any{"name": old})
	want := "refusing to remove any SVM: 1 selected SVM(s) blocked by safety gates: " + old + " on " + host + " (6.1.0.100): " +
		fleet.GateUnknownVMs + ": 1 VM(s) on " + host + " may need it, their Light Agent unknown to KSC: " + asleep +
		" (not in KSC); list a VM that carries no Light Agent in not_protected_vms"
	for _, check := range []bool{true, false} {
		res := ansibletest.Run(t, ctx, "svm_remove", New(), args, ansibletest.Mode{Check: check})
		require.True(t, res.Failed())
		assert.Equal(t, want, res.Msg())
	}
	assert.Contains(t, vms(t, s), old)

	res := ansibletest.Run(t, ctx, "svm_remove", New(), labtest.Args(args, map[string]any{"not_protected_vms": []any{asleep}}), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	require.NoError(t, s.PowerOn(ctx, vm))
	require.Eventually(t, func() bool { return len(l.Gaps()) == 1 }, 10*time.Second, 20*time.Millisecond,
		"without the gate the VM wakes up to no compatible SVM")
	assert.Equal(t, asleep, l.Gaps()[0].VM)
}
