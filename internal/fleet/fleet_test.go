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
}

// testCompat: KESL 12.1 with 6.1 and 12.2 with 6.2 (agent versions of
// their own, never the Protection Server's line).
func testCompat() Compat {
	c, err := ParseCompat(map[string]any{
		"6.1": map[string]any{"kesl": []any{"12.1"}},
		"6.2": map[string]any{"kesl": []any{"12.2"}},
	})
	if err != nil {
		panic(err)
	}
	return c
}

func rules() Rules {
	return Rules{
		TargetVersion:    "6.2.0.200",
		ProtectionServer: DefaultProtectionServer,
		LightAgent:       DefaultLightAgent,
		MarkRole:         "ksvla.role", MarkVersion: "ksvla.version", RoleSVM: "svm",
		Compat: testCompat(),
	}
}

func svmVM(name, host, version, power string) VM {
	return VM{Name: name, Moid: "vm-" + name, Host: host, PowerState: power, IP: "127.10.0." + name[len(name)-1:],
		Marks: map[string]string{"ksvla.role": "svm", "ksvla.version": version}}
}

// svmHost is the KSC record of a marked SVM: activated with databases
// unless told otherwise.
func svmHost(name, version string, activated bool, bases string) KSCHost {
	return KSCHost{ID: "id-" + name, DisplayName: name, Visible: true, Activated: activated, BasesDate: bases,
		Products: []Product{{Key: "KSVLA-PS", Version: Version(version)}}}
}

// prepared adds an activated KSC record with databases for every SVM VM.
func prepared(vms []VM, hosts ...KSCHost) []KSCHost {
	for _, v := range vms {
		if v.Marks["ksvla.role"] == "svm" {
			hosts = append(hosts, svmHost(v.Name, v.Marks["ksvla.version"], true, "2026-11-30T08:00:00Z"))
		}
	}
	return hosts
}

func agentHost(name, version string) KSCHost {
	return KSCHost{ID: "id-" + name, DisplayName: name, Visible: true, OS: "Ubuntu 22.04", Products: []Product{{Key: "kesl", Version: Version(version)}}}
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
	hosts := prepared(vms, agentHost("a1", "12.2.0.400"), agentHost("a2", "12.2.0.400"), agentHost("a3", "12.1.0.300"), agentHost("a4", "12.1.0.300"))
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
		AgentsByVersion: map[string]int{"12.2.0.400": 2, "12.1.0.300": 2},
		AgentsPending:   2, Unprotected: 0, HostsReady: 1, Hosts: 3,
	}, f.Summary)
}

func TestBuildUnprotectedAndReadyToRemove(t *testing.T) {
	vms := []VM{
		svmVM("old-1", "esx1", "6.1.0.100", "poweredOff"), svmVM("new-1", "esx1", "6.2.0.200", "poweredOn"),
		{Name: "a1", Host: "esx1"}, {Name: "a2", Host: "esx1"},
	}
	hosts := prepared(vms, agentHost("a1", "12.2.0.400"), agentHost("a2", "12.1.0.300"))
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
	hosts := []KSCHost{agentHost("web01", "12.1.0.300"), {ID: "id-x", DisplayName: "web01-clone", IP: "10.1.1.1", Products: []Product{{Key: "kesl", Version: "12.1.0.300"}}}}
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
	withNew := func(power string) []VM {
		return append(append([]VM(nil), base...), svmVM("new-1", "esx1", "6.2.0.200", power))
	}
	all := func(agents, repl, prep, last bool) map[string]bool {
		return map[string]bool{GateAgents: agents, GateReplacement: repl, GatePrepared: prep, GateNotLast: last, GateUnknownVMs: true}
	}
	tests := map[string]struct {
		vms        []VM
		newSVM     *KSCHost // KSC record of new-1; nil: activated with databases
		compat     Compat
		agent      string
		force      bool
		passed     map[string]bool
		wantReason string
	}{
		"last SVM, no replacement, agent needs it": {vms: base, agent: "12.1.0.300",
			passed: all(false, false, false, false)},
		"replacement running and prepared, agent updated": {vms: withNew("poweredOn"), agent: "12.2.0.400",
			passed: all(true, true, true, true)},
		"replacement powered off": {vms: withNew("poweredOff"), agent: "12.2.0.400",
			passed: all(true, false, false, true), wantReason: "replacement_running: no powered-on SVM of version 6.2.0.200 on esx1"},
		"agent lags": {vms: withNew("poweredOn"), agent: "12.1.0.300",
			passed: all(false, true, true, true)},
		"replacement not activated": {vms: withNew("poweredOn"), agent: "12.2.0.400",
			newSVM: &KSCHost{Activated: false, BasesDate: ""},
			passed: all(true, true, false, true), wantReason: "replacement_prepared: new-1 (6.2.0.200) is not activated and has no databases in KSC: run the activation and database update tasks first"},
		"replacement activated without databases": {vms: withNew("poweredOn"), agent: "12.2.0.400",
			newSVM: &KSCHost{Activated: true},
			passed: all(true, true, false, true), wantReason: "replacement_prepared: new-1 (6.2.0.200) has no databases in KSC"},
		"no row for the old version": {vms: withNew("poweredOn"), agent: "12.2.0.400",
			compat: Compat{{ProtectionServer: "6.2", Agents: map[string][]Version{"kesl": {"12.2"}}}},
			passed: all(false, true, true, true), wantReason: "compatibility has no row for Protection Server 6.1.0.100"},
		"agent in no row needs the old SVM": {vms: withNew("poweredOn"), agent: "12.9.0.1",
			passed: all(false, true, true, true), wantReason: "a1 (kesl 12.9.0.1, in no row of compatibility)"},
		"force skips the gates that need KSC": {vms: withNew("poweredOn"), agent: "12.1.0.300", force: true,
			newSVM: &KSCHost{}, passed: all(false, true, false, true)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var hosts []KSCHost
			for _, h := range prepared(tc.vms, agentHost("a1", tc.agent)) {
				if h.DisplayName == "new-1" && tc.newSVM != nil {
					h.Activated, h.BasesDate = tc.newSVM.Activated, tc.newSVM.BasesDate
				}
				hosts = append(hosts, h)
			}
			r := rules()
			if tc.compat != nil {
				r.Compat = tc.compat
			}
			f := Build(tc.vms, hosts, r)
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
				if tc.force && (x.Name == GateAgents || x.Name == GatePrepared) {
					assert.True(t, x.Skipped, x.Name)
				}
			}
			assert.Equal(t, tc.passed, got)
			if tc.wantReason != "" {
				assert.Contains(t, g.Reason(), tc.wantReason)
			}
			want := true
			for name, p := range tc.passed {
				if !p && !(tc.force && (name == GateAgents || name == GatePrepared)) {
					want = false
				}
			}
			assert.Equal(t, want, g.Passed(), "Passed agrees with the gates")
		})
	}
}

func TestParseCompat(t *testing.T) {
	tests := map[string]struct {
		raw     map[string]any
		want    Compat
		wantErr string
	}{
		"the vendor's defaults": {raw: DefaultCompat, want: Compat{
			{ProtectionServer: "6.0", Agents: map[string][]Version{"kesl": {"12.0"}}},
			{ProtectionServer: "6.1", Agents: map[string][]Version{"kesl": {"12.1"}}},
		}},
		"a single version as a string, products without case": {raw: map[string]any{"6.2.0.200": map[string]any{"KES": "12.6", "KESL": []any{"12.2", "12.3"}}},
			want: Compat{{ProtectionServer: "6.2.0.200", Agents: map[string][]Version{"kes": {"12.6"}, "kesl": {"12.2", "12.3"}}}}},
		"empty":                   {raw: map[string]any{}, wantErr: "compatibility is empty"},
		"not a version":           {raw: map[string]any{"six": map[string]any{"kesl": []any{"12.1"}}}, wantErr: `compatibility: key "six": not a dotted version of numbers`},
		"products not a dict":     {raw: map[string]any{"6.1": []any{"12.1"}}, wantErr: "compatibility: 6.1 must map agent products to lists of agent versions"},
		"no versions":             {raw: map[string]any{"6.1": map[string]any{"kesl": []any{}}}, wantErr: "compatibility: 6.1 -> kesl: lists no agent version"},
		"unquoted YAML number":    {raw: map[string]any{"6.1": map[string]any{"kesl": []any{12.1}}}, wantErr: `compatibility: 6.1 -> kesl: version 12.1 is not a string (quote it: "12.1")`},
		"bad agent version":       {raw: map[string]any{"6.1": map[string]any{"kesl": []any{"12.x"}}}, wantErr: `compatibility: 6.1 -> kesl: version "12.x": not a dotted version of numbers`},
		"versions not a list":     {raw: map[string]any{"6.1": map[string]any{"kesl": map[string]any{}}}, wantErr: "compatibility: 6.1 -> kesl: must be a list of agent versions"},
		"empty product name":      {raw: map[string]any{"6.1": map[string]any{" ": []any{"12.1"}}}, wantErr: "compatibility: 6.1: empty product name"},
		"empty Protection Server": {raw: map[string]any{"6.1": nil}, wantErr: "got nothing"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseCompat(tc.raw)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCompatServes(t *testing.T) {
	c := Compat{
		{ProtectionServer: "6.1", Agents: map[string][]Version{"kesl": {"12.1"}, "kaspersky endpoint security for windows": {"12.5.0.100"}}},
		{ProtectionServer: "6.2.0.200", Agents: map[string][]Version{"kesl": {"12.2"}}},
	}
	kesl := Product{Key: "KESL"}
	win := Product{Key: "KES", DisplayName: "Kaspersky Endpoint Security for Windows"}
	tests := []struct {
		ps      Version
		p       Product
		agent   Version
		want    bool
		servers []string
	}{
		{"6.1.0.100", kesl, "12.1.0.300", true, []string{"6.1"}},
		{"6.1", kesl, "12.1", true, []string{"6.1"}},
		{"6.2.0.200", kesl, "12.1.0.300", false, []string{"6.1"}},
		{"6.2.0.200", kesl, "12.2.0.400", true, []string{"6.2.0.200"}},
		{"6.2.0.201", kesl, "12.2.0.400", false, []string{"6.2.0.200"}},
		{"6.10.0.1", kesl, "12.1.0.1", false, []string{"6.1"}},
		{"6.1.0.100", kesl, "12.10.0.1", false, []string{}},
		{"6.1.0.100", win, "12.5.0.100", true, []string{"6.1"}},
		{"6.1.0.100", win, "12.5.0.101", false, []string{}},
		{"6.1.0.100", Product{Key: "KSVLA-LA"}, "6.1.0.300", false, []string{}},
		{"", kesl, "12.1", false, []string{"6.1"}},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, c.Serves(tc.ps, tc.p, tc.agent), "%s %v %s", tc.ps, tc.p, tc.agent)
		assert.Equal(t, tc.servers, c.ServersOf(tc.p, tc.agent), "%v %s", tc.p, tc.agent)
	}
	assert.True(t, c.Knows("6.1.0.100"))
	assert.False(t, c.Knows("6.3.0.1"))
}

// Facts carry each agent's product, OS, version and the SVM versions it
// can use; an SVM's activation and databases come from KSC.
func TestBuildReportsProductsAndPreparation(t *testing.T) {
	vms := []VM{svmVM("old-1", "esx1", "6.1.0.100", "poweredOn"), svmVM("new-1", "esx1", "6.2.0.200", "poweredOn"), {Name: "a1", Host: "esx1"}}
	hosts := []KSCHost{svmHost("old-1", "6.1.0.100", true, "2026-11-30T08:00:00Z"), svmHost("new-1", "6.2.0.200", false, ""), agentHost("a1", "12.1.0.300")}
	f := Build(vms, hosts, rules())
	require.Len(t, f.Agents, 1)
	a := f.Agents[0]
	assert.Equal(t, []any{"kesl", "Ubuntu 22.04", Version("12.1.0.300"), []string{"6.1"}, false, true, []string{"old-1"}},
		[]any{a.Product, a.OS, a.Version, a.SVMVersions, a.Updated, *a.Protected, a.ServedBy})
	byName := map[string]SVM{}
	for _, s := range f.SVMs {
		byName[s.Name] = s
	}
	assert.True(t, byName["old-1"].Prepared)
	assert.Equal(t, "2026-11-30T08:00:00Z", byName["old-1"].DatabasesDate)
	assert.False(t, byName["new-1"].Activated)
	assert.False(t, byName["new-1"].Prepared)
	require.Len(t, f.Hypervisors, 1)
	assert.True(t, f.Hypervisors[0].TargetSVMRunning)
	assert.False(t, f.Hypervisors[0].TargetSVMPrepared)
	assert.False(t, f.Hypervisors[0].Ready, "a host is ready only with a prepared new SVM")
}

// Every VM vCenter shows on the host counts: one KSC does not know as a
// Light Agent with its version blocks the removal, named, unless the
// operator lists it (or a pattern of it) as not protected.
func TestUnknownVMGate(t *testing.T) {
	base := []VM{svmVM("old-1", "esx1", "6.1.0.100", "poweredOn"), svmVM("new-1", "esx1", "6.2.0.200", "poweredOn"), {Name: "a1", Host: "esx1"}}
	const suffix = "; list a VM that carries no Light Agent in not_protected_vms"
	for name, tc := range map[string]struct {
		extra        []VM
		agent        string
		notProtected []string
		noTarget     bool
		force        bool
		want         string // the gate's reason when it blocks; "" passes
	}{
		"every VM known":                 {agent: "12.2.0.400"},
		"a VM KSC does not know":         {extra: []VM{{Name: "x1", Host: "esx1", PowerState: "poweredOff"}}, agent: "12.2.0.400", want: "1 VM(s) on esx1 may need it, their Light Agent unknown to KSC: x1 (not in KSC)" + suffix},
		"an agent without a version":     {agent: "", want: "1 VM(s) on esx1 may need it, their Light Agent unknown to KSC: a1 (in KSC without a Light Agent version)" + suffix},
		"a VM on another host":           {extra: []VM{{Name: "x1", Host: "esx2"}}, agent: "12.2.0.400"},
		"listed as not protected":        {extra: []VM{{Name: "x1", Host: "esx1"}}, agent: "12.2.0.400", notProtected: []string{"X1"}},
		"a pattern in not_protected_vms": {extra: []VM{{Name: "vCLS-4c2f", Host: "esx1"}}, agent: "12.2.0.400", notProtected: []string{"vCLS-*"}},
		"force skips it":                 {extra: []VM{{Name: "x1", Host: "esx1"}}, agent: "12.2.0.400", force: true},
	} {
		t.Run(name, func(t *testing.T) {
			vms := append(append([]VM(nil), base...), tc.extra...)
			r := rules()
			r.NotProtected = tc.notProtected
			f := Build(vms, prepared(vms, agentHost("a1", tc.agent)), r)
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
			got := g[len(g)-1]
			require.Equal(t, GateUnknownVMs, got.Name)
			if tc.want == "" {
				assert.True(t, got.Passed || got.Skipped, got.Reason)
				assert.Equal(t, tc.force, got.Skipped)
				return
			}
			assert.False(t, got.Passed)
			assert.Equal(t, tc.want, got.Reason)
		})
	}
}

// Without a target version (a rollback through svm_deploy state=absent)
// nothing replaces the SVM: the replacement and preparation gates pass,
// the agent gate decides.
func TestGatesWithoutTarget(t *testing.T) {
	vms := []VM{svmVM("old-1", "esx1", "6.1.0.100", "poweredOn"), svmVM("new-1", "esx1", "6.2.0.200", "poweredOn"), {Name: "a1", Host: "esx1"}}
	r := rules()
	r.TargetVersion = ""
	f := Build(vms, prepared(vms, agentHost("a1", "12.2.0.400")), r)
	for _, s := range f.SVMs {
		if s.Name != "new-1" {
			continue
		}
		g := Gates(f, s)
		got := map[string]bool{}
		for _, x := range g {
			got[x.Name] = x.Passed
		}
		assert.Equal(t, map[string]bool{GateAgents: false, GateReplacement: true, GatePrepared: true, GateNotLast: true, GateUnknownVMs: true}, got, g.Reason())
	}
}
