package fleet

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/vsphere"
)

// drsSite: cluster c1 with esx1 (old and new SVM, its agent updated) and
// esx2 (old SVM only, its agent not updated); esx3 is standalone with an
// agent not updated.
func drsSite() ([]vsphere.VM, []KSCHost) {
	inv := []vsphere.VM{
		{Name: "old1", Moid: "vm-old1", Host: "esx1", Cluster: "c1", PowerState: "poweredOn", Marks: map[string]string{"ksvla.role": "svm", "ksvla.version": "6.1.0.100"}},
		{Name: "new1", Moid: "vm-new1", Host: "esx1", Cluster: "c1", PowerState: "poweredOn", Marks: map[string]string{"ksvla.role": "svm", "ksvla.version": "6.2.0.200"}},
		{Name: "old2", Moid: "vm-old2", Host: "esx2", Cluster: "c1", PowerState: "poweredOn", Marks: map[string]string{"ksvla.role": "svm", "ksvla.version": "6.1.0.100"}},
		{Name: "old3", Moid: "vm-old3", Host: "esx3", Cluster: "esx3", PowerState: "poweredOn", Marks: map[string]string{"ksvla.role": "svm", "ksvla.version": "6.1.0.100"}},
		{Name: "vm1", Moid: "vm-vm1", Host: "esx1", Cluster: "c1", PowerState: "poweredOn"},
		{Name: "vm2", Moid: "vm-vm2", Host: "esx2", Cluster: "c1", PowerState: "poweredOn"},
		{Name: "vm3", Moid: "vm-vm3", Host: "esx3", Cluster: "esx3", PowerState: "poweredOn"},
	}
	var vms []VM
	for _, v := range inv {
		vms = append(vms, fromInventory(v))
	}
	return inv, prepared(vms, agentHost("vm1", "12.2.0.400"), agentHost("vm2", "12.1.0.300"), agentHost("vm3", "12.1.0.300"))
}

// fakeVC answers a DRS read: the inventory of the test and one cluster's
// settings. A stand-in for vCenter to vary what no lab cluster shows at
// once (overrides of every kind); the lab tests read the real thing.
type fakeVC struct {
	inv      []vsphere.VM
	clusters map[string]vsphere.ClusterDRS
}

func (f fakeVC) Inventory(_ context.Context, sc vsphere.Scope) ([]vsphere.VM, error) {
	keep := map[string]bool{}
	for _, h := range sc.Hosts {
		keep[h] = true
	}
	var out []vsphere.VM
	for _, v := range f.inv {
		if len(keep) == 0 || keep[v.Host] {
			out = append(out, v)
		}
	}
	return out, nil
}

func (f fakeVC) ClustersDRS(context.Context, string) (map[string]vsphere.ClusterDRS, error) {
	return f.clusters, nil
}

func TestGateCountsAgentsDRSCanMoveHere(t *testing.T) {
	inv, hosts := drsSite()
	full := vsphere.ClusterDRS{Name: "c1", Enabled: true, DefaultBehavior: types.DrsBehaviorFullyAutomated}
	with := func(c vsphere.ClusterDRS, o map[string]vsphere.DRSOverride) vsphere.ClusterDRS {
		c.Overrides = o
		return c
	}
	const blocked = "no_agent_needs_it: 1 Light Agent(s) of cluster c1 that DRS can move here would need it (on its new host an agent looks for an SVM there first, and with the extended algorithm only there): esx2's vm2 (kesl 12.1.0.300, not updated) can be moved here by DRS"
	for name, tc := range map[string]struct {
		drs       *vsphere.ClusterDRS // nil: DRS not read
		scope     []string
		want      string // old1's blocking reason, "" when removable
		mayArrive int
	}{
		"DRS not read: only esx1's agents count": {nil, nil, "", 0},
		"fully automated":                        {&full, nil, blocked, 1},
		"fully automated, scope esx1 only":       {&full, []string{"esx1"}, blocked, 1},
		"DRS off":                                {&vsphere.ClusterDRS{Name: "c1", DefaultBehavior: types.DrsBehaviorFullyAutomated}, nil, "", 0},
		"partially automated":                    {&vsphere.ClusterDRS{Name: "c1", Enabled: true, DefaultBehavior: types.DrsBehaviorPartiallyAutomated}, nil, "", 0},
		"override disables DRS for vm2":          {ptr(with(full, map[string]vsphere.DRSOverride{"vm-vm2": {Disabled: true}})), nil, "", 0},
		"override: vm2 manual":                   {ptr(with(full, map[string]vsphere.DRSOverride{"vm-vm2": {Behavior: types.DrsBehaviorManual}})), nil, "", 0},
		"override: vm2 fully automated in a manual cluster": {ptr(with(vsphere.ClusterDRS{Name: "c1", Enabled: true, DefaultBehavior: types.DrsBehaviorManual},
			map[string]vsphere.DRSOverride{"vm-vm2": {Behavior: types.DrsBehaviorFullyAutomated}})), nil, blocked, 1},
	} {
		t.Run(name, func(t *testing.T) {
			src := Sources{Inventory: fakeVC{inv: inv}, KSC: nil}
			if tc.drs != nil {
				src.DRS = fakeVC{inv: inv, clusters: map[string]vsphere.ClusterDRS{"c1": *tc.drs}}
			}
			snap, err := Read(context.Background(), src, vsphere.Scope{Hosts: tc.scope}, rules())
			require.NoError(t, err)
			snap.Hosts = hosts
			f := snap.Build(nil, rules())
			hv := hypervisor(t, f, "esx1")
			assert.Equal(t, tc.mayArrive, hv.AgentsMayArrive)
			assert.Equal(t, tc.mayArrive, hv.ArrivalsKeepingOldSVM, "under the hypervisor selection every arrival keeps it")
			assert.Equal(t, tc.mayArrive == 0, hv.Ready)
			if tc.want == "" {
				assert.Equal(t, []string{"old1"}, hv.RemovableSVMs)
			} else {
				assert.Equal(t, tc.want, hv.BlockedRemovals["old1"])
			}
			if tc.scope == nil {
				// esx3 is in no cluster: nothing arrives there.
				assert.Zero(t, hypervisor(t, f, "esx3").AgentsMayArrive)
				// The agents report whether DRS may move them.
				for _, a := range f.Agents {
					if tc.drs == nil {
						assert.Nil(t, a.DRSMovable, a.Name)
						continue
					}
					require.NotNil(t, a.DRSMovable, a.Name)
					if a.Name != "vm1" { // vm1 depends on the cluster alone
						assert.Equal(t, a.Name == "vm2" && tc.mayArrive > 0, *a.DRSMovable, a.Name)
					}
				}
			}
		})
	}
}

// Once esx2's agent is updated and a new SVM runs there, nothing that can
// arrive on esx1 needs its old SVM; an agent that the table knows nothing
// of still blocks.
func TestGateArrivalsUpdatedOrUnknown(t *testing.T) {
	inv, hosts := drsSite()
	full := vsphere.ClusterDRS{Name: "c1", Enabled: true, DefaultBehavior: types.DrsBehaviorFullyAutomated}
	src := Sources{Inventory: fakeVC{inv: inv}, DRS: fakeVC{inv: inv, clusters: map[string]vsphere.ClusterDRS{"c1": full}}}
	snap, err := Read(context.Background(), src, vsphere.Scope{}, rules())
	require.NoError(t, err)

	updated := append([]KSCHost(nil), hosts...)
	for i := range updated {
		if updated[i].DisplayName == "vm2" {
			updated[i] = agentHost("vm2", "12.2.0.400")
		}
	}
	snap.Hosts = updated
	hv := hypervisor(t, snap.Build(nil, rules()), "esx1")
	assert.Equal(t, []string{"old1"}, hv.RemovableSVMs)
	assert.True(t, hv.Ready)

	for i := range updated {
		if updated[i].DisplayName == "vm2" {
			updated[i] = agentHost("vm2", "13.0.0.1")
		}
	}
	hv = hypervisor(t, snap.Build(nil, rules()), "esx1")
	assert.Contains(t, hv.BlockedRemovals["old1"], "esx2's vm2 (kesl 13.0.0.1, in no row of compatibility) can be moved here by DRS")
}

func hypervisor(t *testing.T, f Fleet, name string) Hypervisor {
	t.Helper()
	for _, h := range f.Hypervisors {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no hypervisor %s in %+v", name, f.Hypervisors)
	return Hypervisor{}
}

func ptr[T any](v T) *T { return &v }

// countingVC counts the inventory reads of a fakeVC.
type countingVC struct {
	fakeVC
	reads *int
}

func (c countingVC) Inventory(ctx context.Context, sc vsphere.Scope) ([]vsphere.VM, error) {
	*c.reads++
	return c.fakeVC.Inventory(ctx, sc)
}

// Scoped to hosts, the DRS part needs the VMs of their clusters on the
// other hosts too. Read through the DRS reader alone, that is one pass
// over the inventory, split by host; with a separate inventory reader (a
// caller that records the scope's VMs) it is the scope's read and then
// the cluster's. Both answer the same.
func TestNarrowedScopeReadsInventoryOnce(t *testing.T) {
	inv, _ := drsSite()
	full := map[string]vsphere.ClusterDRS{"c1": {Name: "c1", Enabled: true, DefaultBehavior: types.DrsBehaviorFullyAutomated}}
	sc := vsphere.Scope{Hosts: []string{"esx1"}}

	reads := 0
	vc := countingVC{fakeVC{inv: inv, clusters: full}, &reads}
	one, err := Read(context.Background(), Sources{DRS: vc}, sc, rules())
	require.NoError(t, err)
	assert.Equal(t, 1, reads, "one inventory read for the hosts and their neighbours")

	reads = 0
	two, err := Read(context.Background(), Sources{Inventory: vc, DRS: vc}, sc, rules())
	require.NoError(t, err)
	assert.Equal(t, 2, reads, "the scope through its own reader, the neighbours through DRS")
	assert.Equal(t, two, one)

	var names []string
	for _, v := range one.VMs {
		names = append(names, v.Name)
	}
	assert.Equal(t, []string{"old1", "new1", "vm1"}, names, "esx1's VMs only")
	names = nil
	for _, v := range one.Elsewhere {
		names = append(names, v.Name)
	}
	assert.Equal(t, []string{"old2", "vm2"}, names, "esx2 is in c1, esx3 is not")
	assert.True(t, one.Movable["vm-vm2"])
	assert.True(t, one.Narrowed)

	// Unscoped, one read either way and nothing elsewhere.
	reads = 0
	whole, err := Read(context.Background(), Sources{DRS: vc}, vsphere.Scope{}, rules())
	require.NoError(t, err)
	assert.Equal(t, 1, reads)
	assert.Empty(t, whole.Elsewhere)
	assert.Len(t, whole.VMs, len(inv))
}
