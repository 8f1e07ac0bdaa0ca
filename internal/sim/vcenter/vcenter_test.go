package vcenter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/sim/images"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// events records hook calls; tests wait on it.
type events struct {
	mu  sync.Mutex
	log []string
	vms map[string]VM
}

func (e *events) hooks() Hooks {
	rec := func(kind string) func(VM) {
		return func(vm VM) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.log = append(e.log, kind+" "+vm.Name)
			if e.vms == nil {
				e.vms = map[string]VM{}
			}
			e.vms[kind+" "+vm.Name] = vm
		}
	}
	return Hooks{OnPowerOn: rec("on"), OnPowerOff: rec("off"), OnDestroy: rec("destroy")}
}

func (e *events) snapshot() ([]string, map[string]VM) {
	e.mu.Lock()
	defer e.mu.Unlock()
	vms := map[string]VM{}
	for k, v := range e.vms {
		vms[k] = v
	}
	return append([]string(nil), e.log...), vms
}

func (e *events) waitFor(t *testing.T, entry string) VM {
	t.Helper()
	var vm VM
	require.Eventually(t, func() bool {
		_, vms := e.snapshot()
		var ok bool
		vm, ok = vms[entry]
		return ok
	}, 5*time.Second, 10*time.Millisecond, "hook %q not called", entry)
	return vm
}

func start(t *testing.T, cfg Config) (*VCenter, *govmomi.Client, *events) {
	t.Helper()
	ev := &events{}
	cfg.Hooks = ev.hooks()
	ctx := context.Background()
	v, err := Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(v.Close)
	c, err := v.Client(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Logout(context.Background()) })
	return v, c, ev
}

func labFinder(t *testing.T, c *govmomi.Client) *find.Finder {
	t.Helper()
	finder := find.NewFinder(c.Client)
	dc, err := finder.Datacenter(context.Background(), Datacenter)
	require.NoError(t, err)
	finder.SetDatacenter(dc)
	return finder
}

func TestStartSeedsInventory(t *testing.T) {
	ctx := context.Background()
	v, c, ev := start(t, Config{Hosts: 2, VMsPerHost: 2, OldImageSHA256: "abc123"})

	assert.Nil(t, v.URL().User, "URL must carry no credentials")
	assert.Equal(t, "https", v.URL().Scheme)
	assert.Equal(t, "/sdk", v.URL().Path)

	// The thumbprint is the one a TLS client sees, in govc's format.
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(v.CertPEM()))
	conn, err := tls.Dial("tcp", v.URL().Host, &tls.Config{RootCAs: pool})
	require.NoError(t, err)
	peer := conn.ConnectionState().PeerCertificates[0]
	_ = conn.Close()
	assert.Equal(t, soap.ThumbprintSHA1(peer), v.Thumbprint())
	assert.Regexp(t, `^([0-9A-F]{2}:){19}[0-9A-F]{2}$`, v.Thumbprint())

	inv := v.Inventory()
	assert.Equal(t, Inventory{
		Datacenter: "DC1", Cluster: "Cluster1", SharedDatastore: "shared-ds",
		Networks: []string{"VM Network", "dvpg-servers"},
		Hosts: []Host{
			{Name: "esxi-01.lab.local", LocalDatastore: "esxi-01-local", OldSVM: "svm-esxi-01-6.1",
				ProtectedVMs: []string{"vm-esxi-01-001", "vm-esxi-01-002"}, ProtectedIPs: []string{"10.20.1.11", "10.20.1.12"}},
			{Name: "esxi-02.lab.local", LocalDatastore: "esxi-02-local", OldSVM: "svm-esxi-02-6.1",
				ProtectedVMs: []string{"vm-esxi-02-001", "vm-esxi-02-002"}, ProtectedIPs: []string{"10.20.2.11", "10.20.2.12"}},
		},
	}, inv)

	finder := find.NewFinder(c.Client)
	dc, err := finder.Datacenter(ctx, "DC1")
	require.NoError(t, err)
	finder.SetDatacenter(dc)
	for _, h := range inv.Hosts {
		host, err := finder.HostSystem(ctx, "/DC1/host/Cluster1/"+h.Name)
		require.NoError(t, err)
		var mh mo.HostSystem
		require.NoError(t, host.Properties(ctx, host.Reference(), []string{"datastore"}, &mh))
		var names []string
		for _, ref := range mh.Datastore {
			var ds mo.Datastore
			require.NoError(t, property.DefaultCollector(c.Client).RetrieveOne(ctx, ref, []string{"name"}, &ds))
			names = append(names, ds.Name)
		}
		sort.Strings(names)
		assert.Equal(t, []string{h.LocalDatastore, "shared-ds"}, names)
	}
	for _, n := range inv.Networks {
		_, err := finder.Network(ctx, n)
		assert.NoError(t, err, n)
	}

	// Every seeded VM is powered on and was reported once, with details.
	want := []string{}
	for _, h := range inv.Hosts {
		want = append(want, "on "+h.OldSVM)
		for _, vm := range h.ProtectedVMs {
			want = append(want, "on "+vm)
		}
	}
	log, vms := ev.snapshot()
	assert.ElementsMatch(t, want, log)
	svm := vms["on svm-esxi-02-6.1"]
	assert.Equal(t, "esxi-02.lab.local", svm.Host)
	assert.Equal(t, map[string]string{
		vsphere.MarkRole: vsphere.RoleSVM, vsphere.MarkVersion: "6.1.0.100",
		vsphere.MarkImageSHA256: "abc123", vsphere.MarkDeployedBy: vsphere.DeployedBy,
		vsphere.MarkHost: "esxi-02.lab.local",
	}, svm.CustomValues)
	assert.Equal(t, Product{Name: images.DefaultProduct, Version: "6.1.0.100"}, svm.Product)
	prot := vms["on vm-esxi-01-002"]
	assert.Equal(t, "esxi-01.lab.local", prot.Host)
	assert.Empty(t, prot.CustomValues)
	assert.Equal(t, Product{}, prot.Product)

	vm, err := finder.VirtualMachine(ctx, "vm-esxi-01-002")
	require.NoError(t, err)
	var mvm mo.VirtualMachine
	require.NoError(t, vm.Properties(ctx, vm.Reference(), []string{"guest", "runtime", "summary.runtime"}, &mvm))
	assert.Equal(t, types.VirtualMachinePowerStatePoweredOn, mvm.Runtime.PowerState)
	for _, rt := range []types.VirtualMachineRuntimeInfo{mvm.Runtime, mvm.Summary.Runtime} {
		assert.EqualValues(t, types.VirtualMachineFaultToleranceStateNotConfigured, rt.FaultToleranceState)
		assert.EqualValues(t, types.VirtualMachineRecordReplayStateInactive, rt.RecordReplayState)
	}
	assert.Equal(t, "10.20.1.12", mvm.Guest.IpAddress)
	assert.Equal(t, string(types.VirtualMachineToolsRunningStatusGuestToolsRunning), mvm.Guest.ToolsRunningStatus)
}

// vCenter sends the first batch of a wait in update sets of at most 100
// objects: Start returns only once every seeded VM has been reported,
// however many sets that takes.
func TestStartReportsEveryVMOfALargeInventory(t *testing.T) {
	v, _, ev := start(t, Config{Hosts: 2, VMsPerHost: 120})
	log, _ := ev.snapshot()
	want := 0
	for _, h := range v.Inventory().Hosts {
		want += 1 + len(h.ProtectedVMs)
	}
	assert.Equal(t, 242, want)
	assert.Len(t, log, want, "power-ons reported when Start returned")
}

func TestUnmarkedSVMsCarryNoMarks(t *testing.T) {
	v, c, ev := start(t, Config{Hosts: 1, VMsPerHost: -1, Unmarked: true})
	_, vms := ev.snapshot()
	svm := vms["on svm-esxi-01-6.1"]
	assert.Empty(t, svm.CustomValues)
	assert.Equal(t, Product{}, svm.Product)
	assert.Empty(t, v.Inventory().Hosts[0].ProtectedVMs)

	m, err := object.GetCustomFieldsManager(c.Client)
	require.NoError(t, err)
	defs, err := m.Field(context.Background())
	require.NoError(t, err)
	assert.Empty(t, defs, "wizard-deployed labs have no ksvla attribute definitions")
}

func TestWatcherReportsPowerAndDestroy(t *testing.T) {
	ctx := context.Background()
	v, c, ev := start(t, Config{Hosts: 2, VMsPerHost: 1})
	finder := labFinder(t, c)
	svm, err := finder.VirtualMachine(ctx, "svm-esxi-02-6.1")
	require.NoError(t, err)

	task, err := svm.PowerOff(ctx)
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))
	off := ev.waitFor(t, "off svm-esxi-02-6.1")
	assert.Equal(t, "esxi-02.lab.local", off.Host)

	// First-boot commands and a new mark set while off are seen at power-on.
	task, err = svm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
		&types.OptionValue{Key: "guestinfo.klfirstboot.cmd1", Value: "network eth0 192.0.2.45 255.255.255.0 192.0.2.255"},
	}})
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))
	m, err := object.GetCustomFieldsManager(c.Client)
	require.NoError(t, err)
	def, err := m.Add(ctx, "lab.note", "VirtualMachine", nil, nil)
	require.NoError(t, err)
	require.NoError(t, m.Set(ctx, svm.Reference(), def.Key, "hello"))
	ev.mu.Lock()
	delete(ev.vms, "on svm-esxi-02-6.1")
	ev.mu.Unlock()
	task, err = svm.PowerOn(ctx)
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))
	on := ev.waitFor(t, "on svm-esxi-02-6.1")
	assert.Equal(t, "network eth0 192.0.2.45 255.255.255.0 192.0.2.255", on.ExtraConfig["guestinfo.klfirstboot.cmd1"])
	assert.Equal(t, "hello", on.CustomValues["lab.note"])
	assert.Equal(t, "6.1.0.100", on.CustomValues[vsphere.MarkVersion])

	require.NoError(t, v.SetGuestIP(ctx, svm.Reference(), "127.10.0.2"))
	ip, err := svm.WaitForIP(ctx)
	require.NoError(t, err)
	assert.Equal(t, "127.10.0.2", ip)

	task, err = svm.PowerOff(ctx)
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))
	task, err = svm.Destroy(ctx)
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))
	gone := ev.waitFor(t, "destroy svm-esxi-02-6.1")
	assert.Equal(t, svm.Reference(), gone.Ref)
	assert.Equal(t, "esxi-02.lab.local", gone.Host)

	log, _ := ev.snapshot()
	var mine []string
	for _, e := range log {
		if e == "on svm-esxi-02-6.1" || e == "off svm-esxi-02-6.1" || e == "destroy svm-esxi-02-6.1" {
			mine = append(mine, e)
		}
	}
	assert.Equal(t, []string{"on svm-esxi-02-6.1", "off svm-esxi-02-6.1", "on svm-esxi-02-6.1", "off svm-esxi-02-6.1", "destroy svm-esxi-02-6.1"}, mine)
}

func TestFaultInjection(t *testing.T) {
	ctx := context.Background()
	v, c, _ := start(t, Config{Hosts: 1, VMsPerHost: 1})
	v.Faults().AddRule(&simulator.FaultInjectionRule{
		MethodName: "PowerOffVM_Task", ObjectType: "VirtualMachine", ObjectName: "vm-esxi-01-001",
		Probability: 1, FaultType: simulator.FaultTypeInvalidState, Message: "injected", Enabled: true,
	})
	vm, err := labFinder(t, c).VirtualMachine(ctx, "vm-esxi-01-001")
	require.NoError(t, err)
	_, err = vm.PowerOff(ctx)
	assert.ErrorContains(t, err, "injected")
	v.Faults().ClearRules()
	task, err := vm.PowerOff(ctx)
	require.NoError(t, err)
	assert.NoError(t, task.Wait(ctx))
}

func TestCredentialsAndListen(t *testing.T) {
	ctx := context.Background()
	v, _, _ := start(t, Config{Hosts: 1, VMsPerHost: -1, Username: "admin@lab", Password: "s3cret!"})
	c, err := govmomi.NewClient(ctx, v.URL(), true)
	if err == nil {
		err = c.Login(ctx, url.UserPassword("admin@lab", "wrong"))
	}
	assert.Error(t, err, "a wrong password is refused")

	// A busy address is an error, not the simulator's panic.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, err = Start(ctx, Config{Hosts: 1, VMsPerHost: -1, Listen: l.Addr().String()})
	assert.ErrorContains(t, err, "serve vcenter on "+l.Addr().String())
}

func TestProtectedIPStaysValidBeyond240VMs(t *testing.T) {
	for _, tc := range []struct {
		host, n int
		want    string
	}{
		{0, 0, "10.20.1.11"},
		{1, 1, "10.20.2.12"},
		{0, 239, "10.20.1.250"},
		{0, 240, "10.21.1.11"},
		{63, 1023, "10.24.64.74"},
	} {
		assert.Equal(t, tc.want, protectedIP(tc.host, tc.n), "host %d vm %d", tc.host, tc.n)
	}
}
