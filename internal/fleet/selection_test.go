package fleet

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/vsphere"
)

// selectionSite: a fully automated DRS cluster c1 of n hosts esx1..esxN,
// each with an old SVM oldI, a new SVM newI (unless left out in noNew) and
// one protected VM vmI whose agent is updated unless named in old.
func selectionSite(n int, noNew map[string]bool, old map[string]string) ([]vsphere.VM, []KSCHost) {
	var inv []vsphere.VM
	var agents []KSCHost
	for i := 1; i <= n; i++ {
		host := fmt.Sprintf("esx%d", i)
		svm := func(name, version string) vsphere.VM {
			return vsphere.VM{Name: name, Moid: "vm-" + name, Host: host, Cluster: "c1", PowerState: "poweredOn",
				Marks: map[string]string{"ksvla.role": "svm", "ksvla.version": version}}
		}
		inv = append(inv, svm(fmt.Sprintf("old%d", i), "6.1.0.100"))
		if !noNew[host] {
			inv = append(inv, svm(fmt.Sprintf("new%d", i), "6.2.0.200"))
		}
		vm := fmt.Sprintf("vm%d", i)
		inv = append(inv, vsphere.VM{Name: vm, Moid: "vm-" + vm, Host: host, Cluster: "c1", PowerState: "poweredOn"})
		version := "12.2.0.400"
		if v, ok := old[vm]; ok {
			version = v
		}
		agents = append(agents, agentHost(vm, version))
	}
	var vms []VM
	for _, v := range inv {
		vms = append(vms, fromInventory(v))
	}
	return inv, prepared(vms, agents...)
}

// selectionView is the fleet as a module scoped to hosts (none: all)
// reads it, DRS fully automated in c1.
func selectionView(t *testing.T, inv []vsphere.VM, ksc []KSCHost, selection string, hosts ...string) Fleet {
	t.Helper()
	full := vsphere.ClusterDRS{Name: "c1", Enabled: true, DefaultBehavior: types.DrsBehaviorFullyAutomated}
	src := Sources{Inventory: fakeVC{inv: inv}, DRS: fakeVC{inv: inv, clusters: map[string]vsphere.ClusterDRS{"c1": full}}}
	r := rules()
	r.AgentSelection = selection
	snap, err := Read(context.Background(), src, vsphere.Scope{Hosts: hosts}, r)
	require.NoError(t, err)
	snap.Hosts = ksc
	return snap.Build(nil, r)
}

// removable lists the old SVMs the gates let go, in the view of every
// host on its own (as the removal play's svm_remove reads it) and in the
// view of the whole cluster; the views must agree.
func removable(t *testing.T, inv []vsphere.VM, ksc []KSCHost, selection string) []string {
	t.Helper()
	hosts := map[string]bool{}
	for _, v := range inv {
		hosts[v.Host] = true
	}
	var perHost []string
	for h := range hosts {
		perHost = append(perHost, hypervisor(t, selectionView(t, inv, ksc, selection, h), h).RemovableSVMs...)
	}
	var whole []string
	for _, hv := range selectionView(t, inv, ksc, selection).Hypervisors {
		whole = append(whole, hv.RemovableSVMs...)
	}
	sort.Strings(perHost)
	sort.Strings(whole)
	require.Equal(t, whole, perHost, "a host's own view and the cluster's disagree")
	return whole
}

func svmNamed(t *testing.T, f Fleet, name string) SVM {
	t.Helper()
	for _, s := range f.SVMs {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no SVM %s", name)
	return SVM{}
}

// With the standard algorithm or the cluster scope, an agent DRS may move
// onto a host whose old SVM is gone takes another old SVM of the cluster:
// one of them, the anchor, stays for it and the others may go. Under the
// hypervisor scope (the default) every old SVM stays.
func TestAgentSelectionAnchor(t *testing.T) {
	off := func(name string) func([]vsphere.VM) {
		return func(inv []vsphere.VM) {
			for i := range inv {
				if inv[i].Name == name {
					inv[i].PowerState = "poweredOff"
				}
			}
		}
	}
	const vm2 = "esx2's vm2 (kesl 12.1.0.300, not updated) can be moved here by DRS"
	for name, tc := range map[string]struct {
		selection string
		noNew     map[string]bool
		old       map[string]string // agent VM -> its old version
		change    func([]vsphere.VM)
		want      []string // removable old SVMs
		anchor    string   // "": none
		// reasons holds a blocked SVM's refusal, or a removable one's gate reason.
		reasons map[string]string
	}{
		"hypervisor: every old SVM of the cluster waits": {selection: SelectHypervisor, old: map[string]string{"vm2": "12.1.0.300"},
			reasons: map[string]string{"old1": "no_agent_needs_it: 1 Light Agent(s) of cluster c1 that DRS can move here would need it (on its new host an agent looks for an SVM there first, and with the extended algorithm only there): " + vm2}},
		"none stated: as hypervisor": {selection: "", old: map[string]string{"vm2": "12.1.0.300"}},
		"standard: all but the anchor, last by name": {selection: SelectStandard, old: map[string]string{"vm2": "12.1.0.300"},
			want: []string{"old1", "old3"}, anchor: "old4", reasons: map[string]string{
				"old1": "no Light Agent on esx1 needs Protection Server 6.1.0.100; 1 Light Agent(s) not updated of cluster c1 that DRS can move here can use old4, the anchor kept for them (agent_selection standard)",
				"old4": "no_agent_needs_it: 1 Light Agent(s) of cluster c1 that DRS can move here would need it (agent_selection standard: an agent moved here looks for an SVM elsewhere in the cluster, and old4 is the anchor, the old SVM of cluster c1 kept for them): " + vm2,
				"old2": "no_agent_needs_it: 1 Light Agent(s) on esx2 still need it: vm2 (kesl 12.1.0.300)"}},
		"cluster: the same": {selection: SelectCluster, old: map[string]string{"vm2": "12.1.0.300"},
			want: []string{"old1", "old3"}, anchor: "old4"},
		"standard, old agents on two hosts: one anchor for both": {selection: SelectStandard, old: map[string]string{"vm2": "12.1.0.300", "vm3": "12.1.0.300"},
			want: []string{"old1"}, anchor: "old4", reasons: map[string]string{
				"old1": "no Light Agent on esx1 needs Protection Server 6.1.0.100; 2 Light Agent(s) not updated of cluster c1 that DRS can move here can use old4, the anchor kept for them (agent_selection standard)"}},
		"standard, esx2 left out of the run: its old SVM anchors, the others go": {selection: SelectStandard, noNew: map[string]bool{"esx2": true},
			old: map[string]string{"vm2": "12.1.0.300"}, want: []string{"old1", "old3", "old4"}, anchor: "old2"},
		"standard, esx2's new SVM is off: its old SVM anchors": {selection: SelectStandard, change: off("new2"),
			old: map[string]string{"vm2": "12.1.0.300"}, want: []string{"old1", "old3", "old4"}, anchor: "old2"},
		"standard, the last one is off: the next one anchors": {selection: SelectStandard, change: off("old4"),
			old: map[string]string{"vm2": "12.1.0.300"}, want: []string{"old1", "old4"}, anchor: "old3"},
		"standard, an agent in no row of compatibility keeps every old SVM": {selection: SelectStandard, old: map[string]string{"vm2": "13.0.0.1"},
			reasons: map[string]string{"old1": "no_agent_needs_it: 1 Light Agent(s) of cluster c1 that DRS can move here would need it (on its new host an agent looks for an SVM there first, and with the extended algorithm only there): esx2's vm2 (kesl 13.0.0.1, in no row of compatibility) can be moved here by DRS"}},
	} {
		t.Run(name, func(t *testing.T) {
			inv, ksc := selectionSite(4, tc.noNew, tc.old)
			if tc.change != nil {
				tc.change(inv)
			}
			want := tc.want
			if want == nil {
				want = []string{}
			}
			got := removable(t, inv, ksc, tc.selection)
			if got == nil {
				got = []string{}
			}
			assert.Equal(t, want, got)
			f := selectionView(t, inv, ksc, tc.selection)
			for svm, reason := range tc.reasons {
				g := Gates(f, svmNamed(t, f, svm))
				if g.Passed() {
					assert.Equal(t, reason, g[0].Reason, svm)
				} else {
					assert.Equal(t, reason, g.Reason(), svm)
				}
			}
			// A host is ready (the play's wait ends) when its old SVM is not
			// the anchor; the anchor's host waits for the agents.
			for _, hv := range f.Hypervisors {
				if _, ownOld := tc.old["vm"+hv.Name[3:]]; ownOld || tc.noNew[hv.Name] {
					continue
				}
				old := "old" + hv.Name[3:]
				keeps := !contains(want, old)
				assert.Equal(t, !keeps, hv.Ready, hv.Name)
				assert.Equal(t, keeps, hv.ArrivalsKeepingOldSVM > 0, hv.Name)
				assert.Equal(t, len(tc.old), hv.AgentsMayArrive, hv.Name)
			}
		})
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Hosts remove at once (the removal play runs free): each decides on its
// own read, all taken before any removal. The anchor is in no host's
// removals, so after them all an old SVM still serves the agent DRS may
// move, and the gate still keeps it until that agent is updated.
func TestAnchorStaysWhenHostsRemoveAtOnce(t *testing.T) {
	for _, selection := range []string{SelectStandard, SelectCluster} {
		for name, noNew := range map[string]map[string]bool{"every host upgraded": nil, "esx3 left out": {"esx3": true}} {
			t.Run(selection+", "+name, func(t *testing.T) {
				inv, ksc := selectionSite(5, noNew, map[string]string{"vm1": "12.1.0.300", "vm2": "12.1.0.300"})
				var decided []string
				for i := 1; i <= 5; i++ {
					h := fmt.Sprintf("esx%d", i)
					decided = append(decided, hypervisor(t, selectionView(t, inv, ksc, selection, h), h).RemovableSVMs...)
				}
				require.NotEmpty(t, decided)
				gone := map[string]bool{}
				for _, n := range decided {
					gone[n] = true
				}
				var left []vsphere.VM
				for _, v := range inv {
					if !gone[v.Name] {
						left = append(left, v)
					}
				}
				f := selectionView(t, left, ksc, selection)
				var serving []string
				for _, s := range f.SVMs {
					if !s.Target && s.PowerState == "poweredOn" && s.Host != "esx1" && s.Host != "esx2" {
						serving = append(serving, s.Name)
					}
				}
				require.Len(t, serving, 1, "one old SVM off the old agents' hosts is left for them: %v", serving)
				anchor := "old5"
				if noNew["esx3"] {
					anchor = "old3"
				}
				assert.Equal(t, []string{anchor}, serving)
				hv := hypervisor(t, f, "esx"+anchor[3:])
				assert.Empty(t, hv.RemovableSVMs)
				assert.Contains(t, hv.BlockedRemovals[anchor], anchor+" is the anchor")
				assert.Equal(t, 2, hv.ArrivalsKeepingOldSVM)
			})
		}
	}
}
