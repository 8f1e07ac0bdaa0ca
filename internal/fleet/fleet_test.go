package fleet

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b Version
		want int
	}{
		{"6.2.0.200", "6.2.0.200", 0},
		{"6.10", "6.9", 1},
		{"6.2", "6.2.0.0", 0},
		{"6.1.0.100", "6.2.0.1", -1},
		{"6.2.0.beta", "6.2.0.1", 1},
		{"", "0", 0},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, tc.a.Compare(tc.b), "%s vs %s", tc.a, tc.b)
		assert.Equal(t, -tc.want, tc.b.Compare(tc.a), "%s vs %s", tc.b, tc.a)
	}
	assert.True(t, Compatible("6.2.0.400", "6.2.0.200"))
	assert.False(t, Compatible("6.1.0.300", "6.2.0.200"))
	assert.False(t, Compatible("", "6.2.0.200"))
}

func rules() Rules {
	return Rules{
		TargetVersion:    "6.2.0.200",
		ProtectionServer: DefaultProtectionServer,
		LightAgent:       DefaultLightAgent,
		MarkRole:         "ksvla.role", MarkVersion: "ksvla.version", RoleSVM: "svm",
	}
}

func svmVM(name, host, version, power string) VM {
	return VM{Name: name, Moid: "vm-" + name, Host: host, PowerState: power, IP: "127.10.0." + name[len(name)-1:],
		Marks: map[string]string{"ksvla.role": "svm", "ksvla.version": version}}
}

func agentHost(name, version string) KSCHost {
	return KSCHost{ID: "id-" + name, DisplayName: name, Visible: true, Products: []Product{{Key: "KSVLA-LA", Version: Version(version)}}}
}

// A half-upgraded fleet: esx1 is done (new SVM, agents new), esx2 has a new
// SVM but one agent lags, esx3 has only the old SVM.
func TestBuildHalfUpgraded(t *testing.T) {
	vms := []VM{
		svmVM("old-1", "esx1", "6.1.0.100", "poweredOn"), svmVM("new-1", "esx1", "6.2.0.200", "poweredOn"),
		svmVM("old-2", "esx2", "6.1.0.100", "poweredOn"), svmVM("new-2", "esx2", "6.2.0.200", "poweredOn"),
		svmVM("old-3", "esx3", "6.1.0.100", "poweredOn"),
		{Name: "a1", Host: "esx1", PowerState: "poweredOn"}, {Name: "a2", Host: "esx2", PowerState: "poweredOn"},
		{Name: "a3", Host: "esx2", PowerState: "poweredOn"}, {Name: "a4", Host: "esx3", PowerState: "poweredOn"},
	}
	hosts := []KSCHost{agentHost("a1", "6.2.0.400"), agentHost("a2", "6.2.0.400"), agentHost("a3", "6.1.0.300"), agentHost("a4", "6.1.0.300")}
	f := Build(vms, hosts, rules())

	require.Len(t, f.Hypervisors, 3)
	type want struct {
		ready, target bool
		pending       []string
		removable     []string
		blocked       []string
	}
	wants := map[string]want{
		"esx1": {true, true, []string{}, []string{"old-1"}, nil},
		"esx2": {false, true, []string{"a3"}, []string{}, []string{"old-2"}},
		"esx3": {false, false, []string{"a4"}, []string{}, []string{"old-3"}},
	}
	for _, h := range f.Hypervisors {
		w := wants[h.Name]
		assert.Equal(t, w.ready, h.Ready, h.Name)
		assert.Equal(t, w.target, h.TargetSVMRunning, h.Name)
		assert.Equal(t, w.pending, h.AgentsPending, h.Name)
		assert.Equal(t, w.removable, h.RemovableSVMs, h.Name)
		var blocked []string
		for s := range h.BlockedRemovals {
			blocked = append(blocked, s)
		}
		assert.Equal(t, w.blocked, blocked, h.Name)
		assert.Empty(t, h.Unprotected, h.Name)
	}
	assert.Equal(t, map[string]bool{"6.1.0.100": false}, f.ReadyToRemove)
	assert.Equal(t, Summary{
		SVMsByVersion:   map[string]int{"6.1.0.100": 3, "6.2.0.200": 2},
		AgentsByVersion: map[string]int{"6.2.0.400": 2, "6.1.0.300": 2},
		AgentsPending:   2, Unprotected: 0, HostsReady: 1, Hosts: 3,
	}, f.Summary)
}

func TestBuildUnprotectedAndReadyToRemove(t *testing.T) {
	vms := []VM{
		svmVM("old-1", "esx1", "6.1.0.100", "poweredOff"), svmVM("new-1", "esx1", "6.2.0.200", "poweredOn"),
		{Name: "a1", Host: "esx1"}, {Name: "a2", Host: "esx1"},
	}
	hosts := []KSCHost{agentHost("a1", "6.2.0.400"), agentHost("a2", "6.1.0.300")}
	f := Build(vms, hosts, rules())
	require.Len(t, f.Hypervisors, 1)
	assert.Equal(t, []string{"a2"}, f.Hypervisors[0].Unprotected, "the old SVM is off, so the old agent is unprotected")
	assert.Equal(t, 1, f.Summary.Unprotected)
}

func TestRecognition(t *testing.T) {
	pattern := regexp.MustCompile(`^svm-`)
	vms := []VM{
		{Name: "svm-wizard-1", Host: "esx1", PowerState: "poweredOn", IP: "10.0.0.1"},
		{Name: "svm-wizard-2", Host: "esx1", PowerState: "poweredOn", IP: "10.0.0.2"},
		{Name: "svm-wizard-3", Host: "esx1", PowerState: "poweredOn", IP: "10.0.0.3"},
		{Name: "svm-lookalike", Host: "esx1", PowerState: "poweredOn"},
	}
	hosts := []KSCHost{{ID: "h2", DisplayName: "svm-wizard-2", IP: "10.0.0.2", Products: []Product{{Key: "KSVLA-PS", Version: "6.1.0.100"}}}}
	tests := map[string]struct {
		probes map[string]Version
		want   map[string]string // name -> recognised by
	}{
		"without probes only the KSC product counts": {nil, map[string]string{"svm-wizard-2": ByKSC}},
		"a probe recognises a pattern match": {map[string]Version{"svm-wizard-1": "6.1.0.100"},
			map[string]string{"svm-wizard-1": ByKlconfig, "svm-wizard-2": ByKSC}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := rules()
			r.SVMNamePattern, r.Probes = pattern, tc.probes
			f := Build(vms, hosts, r)
			got := map[string]string{}
			for _, s := range f.SVMs {
				got[s.Name] = s.RecognisedBy
				assert.Equal(t, Version("6.1.0.100"), s.Version)
			}
			assert.Equal(t, tc.want, got)
			for n := range got {
				assert.NotContains(t, f.Candidates, n)
			}
			assert.Contains(t, f.Candidates, "svm-lookalike", "a name match alone is never an SVM")
		})
	}
}

func TestAmbiguousMatchReported(t *testing.T) {
	vms := []VM{{Name: "web01", Host: "esx1", IP: "10.1.1.1", PowerState: "poweredOn"}}
	hosts := []KSCHost{agentHost("web01", "6.1.0.300"), {ID: "id-x", DisplayName: "web01-clone", IP: "10.1.1.1", Products: []Product{{Key: "KSVLA-LA", Version: "6.1.0.300"}}}}
	f := Build(vms, hosts, rules())
	require.Len(t, f.Ambiguous, 1)
	assert.Contains(t, f.Ambiguous[0], "VM web01 matches 2 KSC hosts")
	assert.ElementsMatch(t, []string{"web01", "web01-clone"}, f.Unmatched, "no agent is pinned to a hypervisor by a guess")
}

func TestListSome(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	for _, tc := range []struct {
		max  int
		want string
	}{
		{4, "a, b, c, d"},
		{10, "a, b, c, d"},
		{2, "a, b and 2 more"},
	} {
		assert.Equal(t, tc.want, listSome(names, tc.max), "max %d", tc.max)
	}
	assert.Equal(t, "", listSome(nil, 2))
}

func TestGates(t *testing.T) {
	base := []VM{svmVM("old-1", "esx1", "6.1.0.100", "poweredOn"), {Name: "a1", Host: "esx1"}}
	tests := map[string]struct {
		vms          []VM
		agent        string
		force        bool
		noTarget     bool
		notProtected []string
		unknown      string // the unknown-VM gate's reason when it blocks
		passed       map[string]bool
	}{
		"last SVM, no replacement, agent needs it": {vms: base, agent: "6.1.0.300",
			passed: map[string]bool{GateAgents: false, GateReplacement: false, GateNotLast: false, GateUnknownVMs: true}},
		"replacement running, agent updated": {vms: append(base, svmVM("new-1", "esx1", "6.2.0.200", "poweredOn")), agent: "6.2.0.400",
			passed: map[string]bool{GateAgents: true, GateReplacement: true, GateNotLast: true, GateUnknownVMs: true}},
		"replacement powered off": {vms: append(base, svmVM("new-1", "esx1", "6.2.0.200", "poweredOff")), agent: "6.2.0.400",
			passed: map[string]bool{GateAgents: true, GateReplacement: false, GateNotLast: true, GateUnknownVMs: true}},
		"agent lags": {vms: append(base, svmVM("new-1", "esx1", "6.2.0.200", "poweredOn")), agent: "6.1.0.300",
			passed: map[string]bool{GateAgents: false, GateReplacement: true, GateNotLast: true, GateUnknownVMs: true}},
		"force skips only the agent gate": {vms: base, agent: "6.1.0.300", force: true,
			passed: map[string]bool{GateAgents: false, GateReplacement: false, GateNotLast: false, GateUnknownVMs: true}},
		"a VM KSC does not know blocks": {vms: append(base, svmVM("new-1", "esx1", "6.2.0.200", "poweredOn"), VM{Name: "x1", Host: "esx1", PowerState: "poweredOff"}),
			agent: "6.2.0.400", unknown: "1 VM(s) on esx1 may need it, their Light Agent unknown to KSC: x1 (not in KSC); list a VM that carries no Light Agent in not_protected_vms",
			passed: map[string]bool{GateAgents: true, GateReplacement: true, GateNotLast: true, GateUnknownVMs: false}},
		"an agent without a version blocks": {vms: append(base, svmVM("new-1", "esx1", "6.2.0.200", "poweredOn")), agent: "",
			unknown: "1 VM(s) on esx1 may need it, their Light Agent unknown to KSC: a1 (in KSC without a Light Agent version); list a VM that carries no Light Agent in not_protected_vms",
			passed:  map[string]bool{GateAgents: true, GateReplacement: true, GateNotLast: true, GateUnknownVMs: false}},
		"a VM on another host does not": {vms: append(base, svmVM("new-1", "esx1", "6.2.0.200", "poweredOn"), VM{Name: "x1", Host: "esx2"}), agent: "6.2.0.400",
			passed: map[string]bool{GateAgents: true, GateReplacement: true, GateNotLast: true, GateUnknownVMs: true}},
		"not_protected_vms lets it pass": {vms: append(base, svmVM("new-1", "esx1", "6.2.0.200", "poweredOn"), VM{Name: "x1", Host: "esx1"}), agent: "6.2.0.400",
			notProtected: []string{"X1"}, passed: map[string]bool{GateAgents: true, GateReplacement: true, GateNotLast: true, GateUnknownVMs: true}},
		"a pattern in not_protected_vms": {vms: append(base, svmVM("new-1", "esx1", "6.2.0.200", "poweredOn"), VM{Name: "vCLS-4c2f", Host: "esx1"}), agent: "6.2.0.400",
			notProtected: []string{"vCLS-*"}, passed: map[string]bool{GateAgents: true, GateReplacement: true, GateNotLast: true, GateUnknownVMs: true}},
		"force skips the unknown-VM gate": {vms: append(base, svmVM("new-1", "esx1", "6.2.0.200", "poweredOn"), VM{Name: "x1", Host: "esx1"}), agent: "6.2.0.400", force: true,
			passed: map[string]bool{GateAgents: true, GateReplacement: true, GateNotLast: true, GateUnknownVMs: false}},
		"no target version: no replacement needed": {vms: append(base, svmVM("new-1", "esx1", "6.2.0.200", "poweredOn")), agent: "6.1.0.300", noTarget: true,
			passed: map[string]bool{GateAgents: false, GateReplacement: true, GateNotLast: true, GateUnknownVMs: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := rules()
			r.NotProtected = tc.notProtected
			if tc.noTarget {
				r.TargetVersion = ""
			}
			f := Build(tc.vms, []KSCHost{agentHost("a1", tc.agent)}, r)
			var old SVM
			for _, s := range f.SVMs {
				if s.Name == "old-1" {
					old = s
				}
			}
			g := Gates(f, old)
			if tc.force {
				g = GatesForced(f, old)
			}
			got := map[string]bool{}
			for _, x := range g {
				got[x.Name] = x.Passed
				assert.NotEmpty(t, x.Reason)
				if tc.force && !x.Passed && (x.Name == GateAgents || x.Name == GateUnknownVMs) {
					assert.True(t, x.Skipped)
				}
				if x.Name == GateUnknownVMs && tc.unknown != "" {
					assert.Equal(t, tc.unknown, x.Reason)
				}
			}
			assert.Equal(t, tc.passed, got)
		})
	}
}
