package vsphere

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/simulator"
)

// inventoryLab starts a simulator with perPool VMs on the standalone host
// and perPool in the cluster's pool.
func inventoryLab(t testing.TB, perPool int) (*lab, *Session) {
	l := newLab(t, func(m *simulator.Model) { m.Machine = perPool })
	return l, l.session(t)
}

func inventoryTrips(t testing.TB, s *Session, sc Scope) ([]VM, int64) {
	t.Helper()
	before := s.RoundTrips()
	vms, err := s.Inventory(context.Background(), sc)
	require.NoError(t, err)
	return vms, s.RoundTrips() - before
}

func TestInventory(t *testing.T) {
	l, s := inventoryLab(t, 2)
	_ = l
	ctx := context.Background()
	dc, err := s.Datacenter(ctx, "")
	require.NoError(t, err)
	vm, err := s.VM(ctx, dc, "DC0_C0_RP0_VM1")
	require.NoError(t, err)
	require.NoError(t, s.SetMarks(ctx, vm, map[string]string{MarkRole: RoleSVM, MarkVersion: "6.1.0.50"}))
	setIP(t, vm, "10.0.0.7")
	task, err := vm.Reconfigure(ctx, extraConfigSpec(map[string]string{
		"guestinfo.klfirstboot.cmd0": "klconfig apiversion", "SET.guest.hostName": "svm-old",
	}))
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))

	vms, trips := inventoryTrips(t, s, Scope{Details: true})
	require.Len(t, vms, 4)
	assert.LessOrEqual(t, trips, int64(3), "create view, retrieve, destroy view")
	var got VM
	for _, v := range vms {
		if v.Name == "DC0_C0_RP0_VM1" {
			got = v
		}
	}
	assert.Equal(t, vm.Reference().Value, got.Moid)
	assert.NotEmpty(t, got.InstanceUUID)
	assert.Contains(t, []string{"DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"}, got.Host)
	assert.Equal(t, "DC0_C0", got.Cluster)
	assert.Equal(t, "poweredOn", got.PowerState)
	assert.Equal(t, "10.0.0.7", got.IP)
	assert.Equal(t, "svm-old", got.HostName)
	assert.Equal(t, map[string]string{MarkRole: RoleSVM, MarkVersion: "6.1.0.50"}, got.Marks)
	assert.Equal(t, map[string]string{"guestinfo.klfirstboot.cmd0": "klconfig apiversion"}, got.FirstBoot)

	scoped, _ := inventoryTrips(t, s, Scope{Datacenter: "DC0", Cluster: "DC0_C0"})
	assert.Len(t, scoped, 2)
	for _, v := range scoped {
		assert.Equal(t, "DC0_C0", v.Cluster)
	}
	onHost, _ := inventoryTrips(t, s, Scope{Hosts: []string{"DC0_H0"}})
	require.Len(t, onHost, 2)
	assert.Equal(t, "DC0_H0_VM0", onHost[0].Name)
	assert.Equal(t, "DC0_H0", onHost[0].Cluster, "a standalone host's compute resource")

	// Paging: a small page gives the same answer in more round trips.
	defer func(p int32) { inventoryPage = p }(inventoryPage)
	inventoryPage = 3
	paged, pagedTrips := inventoryTrips(t, s, Scope{Details: true})
	assert.Equal(t, vms, paged)
	assert.Greater(t, pagedTrips, trips)
}

func TestInventoryRoundTripsIndependentOfVMCount(t *testing.T) {
	_, small := inventoryLab(t, 5)
	_, large := inventoryLab(t, 20) // the simulator builds ~20 VMs a second; BenchmarkInventory uses 200
	vs, ts := inventoryTrips(t, small, Scope{})
	vl, tl := inventoryTrips(t, large, Scope{})
	assert.Len(t, vs, 10)
	assert.Len(t, vl, 40)
	assert.Equal(t, ts, tl)
}

func BenchmarkInventory(b *testing.B) {
	_, s := inventoryLab(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	before := s.RoundTrips()
	for b.Loop() {
		if _, err := s.Inventory(ctx, Scope{Details: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.RoundTrips()-before)/float64(b.N), "roundtrips/op")
}
