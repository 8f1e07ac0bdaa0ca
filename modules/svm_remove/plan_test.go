package svmremove

import (
	"testing"

	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	oldV    = fleet.Version("6.1.0.100")
	newV    = fleet.Version("6.2.0.200")
	oldLA   = fleet.Version("12.1.0.300")
	newLA   = fleet.Version("12.2.0.400")
	onState = "poweredOn"
)

// svm is an SVM as KSC shows it after step 4: activated, with databases.
func svm(name, host string, v fleet.Version) fleet.SVM {
	return fleet.SVM{Name: name, Moid: "vm-" + name, Host: host, Version: v, PowerState: onState,
		RecognisedBy: fleet.ByMarks, Target: v.Line() == newV.Line(), KSCID: "id-" + name,
		Activated: true, DatabasesDate: "2026-11-30T08:00:00Z", Prepared: true}
}

// compat pairs KESL 12.1 with 6.1 and 12.2 with 6.2.
var compat = fleet.Compat{
	{ProtectionServer: "6.1", Agents: map[string][]fleet.Version{"kesl": {"12.1"}}},
	{ProtectionServer: "6.2", Agents: map[string][]fleet.Version{"kesl": {"12.2"}}},
}

func agent(name, host string, v fleet.Version) fleet.Agent {
	return fleet.Agent{Name: name, Host: host, Product: "kesl", Version: v, KSCID: "id-" + name,
		SVMVersions: compat.ServersOf(fleet.Product{Key: "kesl"}, v)}
}

// obsOf builds an observation whose scope holds the fleet's VMs plus
// extra VMs ({name, host}; a name may repeat).
func obsOf(f fleet.Fleet, extra ...[2]string) observed {
	f.TargetVersion, f.Compat = newV, compat
	in := map[string][]vmRef{}
	for _, s := range f.SVMs {
		in[s.Name] = append(in[s.Name], vmRef{Moid: s.Moid, Host: s.Host})
	}
	for _, a := range f.Agents {
		in[a.Name] = append(in[a.Name], vmRef{Moid: "vm-" + a.Name, Host: a.Host})
	}
	for _, e := range extra {
		in[e[0]] = append(in[e[0]], vmRef{Moid: "vm-" + e[0] + "-" + e[1], Host: e[1]})
	}
	return observed{Fleet: f, InScope: in, Outside: map[string][]string{}}
}

func names(items []Item) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.Name)
	}
	return out
}

func TestPlan(t *testing.T) {
	twoOld := fleet.Fleet{SVMs: []fleet.SVM{svm("a", "h1", oldV), svm("b", "h1", oldV), svm("c", "h1", newV)}}
	outside := obsOf(fleet.Fleet{})
	outside.Outside["far"] = []string{"h9"}
	tests := map[string]struct {
		opts        Options
		obs         observed
		wantRemove  []string
		wantBlocked []string
		wantAbsent  []string
		wantErr     []string // substrings of the error
	}{
		"two old SVMs on one host of which only one may go: the second is blocked": {
			opts:       Options{Names: []string{"b", "a"}},
			obs:        obsOf(fleet.Fleet{SVMs: twoOld.SVMs, Agents: []fleet.Agent{agent("vm1", "h1", oldLA)}}),
			wantRemove: []string{"a"}, wantBlocked: []string{"b"},
			wantErr: []string{"refusing to remove any SVM", "b on h1 (6.1.0.100): no_agent_needs_it: 1 Light Agent(s) on h1 still need it: vm1 (kesl 12.1.0.300)"},
		},
		"both old SVMs go once the agents are updated": {
			opts:       Options{Names: []string{"b", "a"}},
			obs:        obsOf(fleet.Fleet{SVMs: twoOld.SVMs, Agents: []fleet.Agent{agent("vm1", "h1", newLA)}}),
			wantRemove: []string{"a", "b"},
		},
		"by version across hosts: the host without a replacement blocks the whole run": {
			opts: Options{Version: "6.1.0.100"},
			obs: obsOf(fleet.Fleet{SVMs: []fleet.SVM{svm("old1", "h1", oldV), svm("new1", "h1", newV), svm("old2", "h2", oldV)},
				Agents: []fleet.Agent{agent("vm1", "h1", newLA), agent("vm2", "h2", oldLA)}}),
			wantRemove: []string{"old1"}, wantBlocked: []string{"old2"},
			wantErr: []string{"old2 on h2 (6.1.0.100): no_agent_needs_it: 1 Light Agent(s) on h2 still need it: vm2 (kesl 12.1.0.300); replacement_running: no powered-on SVM of version 6.2.0.200 on h2; replacement_prepared: no powered-on SVM of the target version on h2 to prepare; not_last_svm: old2 is the last SVM on h2"},
		},
		"version compares numerically": {
			opts:       Options{Version: "6.1.0.100.0"},
			obs:        obsOf(fleet.Fleet{SVMs: []fleet.SVM{svm("old1", "h1", oldV), svm("new1", "h1", newV)}}),
			wantRemove: []string{"old1"},
		},
		"force skips the agent gate only": {
			opts:       Options{Name: "old1", Force: true},
			obs:        obsOf(fleet.Fleet{SVMs: []fleet.SVM{svm("old1", "h1", oldV), svm("new1", "h1", newV)}, Agents: []fleet.Agent{agent("vm1", "h1", oldLA)}}),
			wantRemove: []string{"old1"},
		},
		"force does not skip the replacement gate": {
			opts:        Options{Name: "old1", Force: true},
			obs:         obsOf(fleet.Fleet{SVMs: []fleet.SVM{svm("old1", "h1", oldV), svm("old1b", "h1", oldV)}}),
			wantBlocked: []string{"old1"},
			wantErr:     []string{"replacement_running: no powered-on SVM of version 6.2.0.200 on h1"},
		},
		"a name no VM carries is absent": {
			opts:       Options{Names: []string{"gone2", "gone1"}},
			obs:        obsOf(fleet.Fleet{}),
			wantAbsent: []string{"gone1", "gone2"},
		},
		"a protected VM is refused by name": {
			opts:    Options{Names: []string{"old1", "vm1"}},
			obs:     obsOf(fleet.Fleet{SVMs: []fleet.SVM{svm("old1", "h1", oldV), svm("new1", "h1", newV)}, Agents: []fleet.Agent{agent("vm1", "h1", newLA)}}),
			wantErr: []string{"refusing to remove anything: vm1 on h1 is not an SVM: it is a protected VM with Light Agent 12.2.0.400"},
		},
		"an unrecognised candidate is refused": {
			opts:    Options{Name: "svm-wizard"},
			obs:     obsOf(fleet.Fleet{Candidates: []string{"svm-wizard"}}, [2]string{"svm-wizard", "h1"}),
			wantErr: []string{"svm-wizard on h1 is not a recognised SVM: it matches svm_name_pattern"},
		},
		"any other VM is refused": {
			opts:    Options{Name: "db"},
			obs:     obsOf(fleet.Fleet{}, [2]string{"db", "h1"}),
			wantErr: []string{"db on h1 is not a recognised SVM: no SVM marks and no Protection Server product in KSC"},
		},
		"a name several VMs carry is refused": {
			opts:    Options{Name: "twin"},
			obs:     obsOf(fleet.Fleet{}, [2]string{"twin", "h1"}, [2]string{"twin", "h2"}),
			wantErr: []string{"2 VMs are named twin (vm-twin-h1 on h1, vm-twin-h2 on h2)"},
		},
		"a name only outside the scope is refused": {
			opts:    Options{Name: "far"},
			obs:     outside,
			wantErr: []string{"far is outside the scope (on h9)"},
		},
	}

	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := plan(tc.opts, tc.obs)
			if len(tc.wantErr) == 0 {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					assert.Contains(t, err.Error(), w)
				}
			}
			if tc.wantBlocked == nil && err != nil && len(p.Blocked) == 0 {
				assert.Empty(t, p.Remove, "a selection error plans nothing")
			}
			if tc.wantRemove == nil {
				tc.wantRemove = []string{}
			}
			assert.Equal(t, tc.wantRemove, names(p.Remove))
			var blocked []string
			for _, b := range p.Blocked {
				blocked = append(blocked, b.Name)
			}
			assert.Equal(t, tc.wantBlocked, blocked)
			if tc.wantAbsent == nil {
				tc.wantAbsent = []string{}
			}
			assert.Equal(t, tc.wantAbsent, p.Absent)
			assert.Equal(t, len(p.Remove) == 0, p.Empty())
		})
	}
}

func TestPlanGatesAndDiff(t *testing.T) {
	obs := obsOf(fleet.Fleet{SVMs: []fleet.SVM{svm("old1", "h1", oldV), svm("new1", "h1", newV)},
		Agents: []fleet.Agent{agent("vm1", "h1", oldLA)}})
	p, err := plan(Options{Name: "old1", Force: true}, obs)
	require.NoError(t, err)
	require.Len(t, p.Remove, 1)
	got := p.Remove[0]
	assert.Equal(t, "id-old1", got.KSCID)
	require.Len(t, got.Gates, 5)
	assert.Equal(t, fleet.Gate{Name: fleet.GateAgents, Skipped: true, Reason: "1 Light Agent(s) on h1 still need it: vm1 (kesl 12.1.0.300)"}, got.Gates[0])
	assert.Equal(t, fleet.Gate{Name: fleet.GateReplacement, Passed: true, Reason: "new1 (6.2.0.200) runs on h1"}, got.Gates[1])
	assert.Equal(t, fleet.Gate{Name: fleet.GatePrepared, Passed: true, Reason: "new1 is activated and has databases of 2026-11-30T08:00:00Z"}, got.Gates[2])
	assert.Equal(t, fleet.Gate{Name: fleet.GateNotLast, Passed: true, Reason: "1 other SVM(s) on h1"}, got.Gates[3])
	assert.Equal(t, fleet.Gate{Name: fleet.GateUnknownVMs, Passed: true, Reason: "every other VM on h1 is an SVM, a Light Agent KSC lists with its version, or listed in not_protected_vms"}, got.Gates[4])

	before, after := p.Diff()
	assert.Equal(t, map[string]any{"svms": []SelectedSVM{{Name: "old1", Host: "h1", Version: oldV, PowerState: onState}}}, before)
	assert.Equal(t, map[string]any{"svms": []SelectedSVM{}}, after)
}
