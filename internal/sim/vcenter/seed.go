package vcenter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/sim/images"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// Inventory is what Start seeded, in host order.
type Inventory struct {
	Datacenter      string
	Cluster         string
	SharedDatastore string
	Networks        []string // standard network first, then the distributed port group
	Hosts           []Host
	// Others are datacenters outside the upgrade (Config.SecondDatacenter).
	Others []OtherDatacenter
}

// OtherDatacenter is a datacenter the upgrade does not touch.
type OtherDatacenter struct {
	Name  string
	Hosts []Host // with OldSVM and no protected VMs
}

// Host is one seeded ESXi host.
type Host struct {
	Name           string   // esxi-01.lab.local
	LocalDatastore string   // esxi-01-local
	OldSVM         string   // svm-esxi-01-6.1
	ProtectedVMs   []string // vm-esxi-01-001, ...
	ProtectedIPs   []string // their guest IPs, in the same order
}

// HostName is the name of the i-th ESXi host, counting from 0.
func HostName(i int) string { return fmt.Sprintf("esxi-%02d.lab.local", i+1) }

// ShortName is a host name without its domain: esxi-01.
func ShortName(host string) string { s, _, _ := strings.Cut(host, "."); return s }

// LocalDatastoreName is the name of a host's local datastore.
func LocalDatastoreName(host string) string { return ShortName(host) + "-local" }

// SVMName names the SVM of version on host the way the lab seeds them:
// svm-esxi-01-6.1 (major.minor only).
func SVMName(host, version string) string {
	return "svm-" + ShortName(host) + "-" + MajorMinor(version)
}

// ProtectedVMName names the n-th protected VM of host, counting from 0.
func ProtectedVMName(host string, n int) string {
	return fmt.Sprintf("vm-%s-%03d", ShortName(host), n+1)
}

// MajorMinor returns the first two dot-separated parts of version.
func MajorMinor(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return version
	}
	return parts[0] + "." + parts[1]
}

// Memory of the seeded VMs.
const (
	SVMMemoryMB         = 4096
	ProtectedVMMemoryMB = 8192
)

// seeder builds the inventory through the vSphere API, as an
// administrator would.
type seeder struct {
	c          *vim25.Client
	cfg        Config
	dir        string
	folders    *object.DatacenterFolders
	finder     *find.Finder
	hosts      []*object.HostSystem
	pool       *object.ResourcePool
	vmNet      types.BaseVirtualDeviceBackingInfo
	dvpgNet    types.BaseVirtualDeviceBackingInfo
	clusterObj *object.ClusterComputeResource
	svms       []*object.VirtualMachine
}

func seed(ctx context.Context, c *vim25.Client, cfg Config, dir string) (Inventory, error) {
	s := &seeder{c: c, cfg: cfg, dir: dir, finder: find.NewFinder(c)}
	inv := Inventory{Datacenter: Datacenter, Cluster: Cluster, SharedDatastore: SharedDatastore, Networks: []string{VMNetwork, DVPortgroup}}
	for _, step := range []struct {
		what string
		run  func(context.Context) error
	}{
		{"datacenter", s.datacenter},
		{"cluster", s.cluster},
		{"networks", s.networks},
		{"datastores", s.datastores},
		{"custom attributes", s.fields},
	} {
		if err := step.run(ctx); err != nil {
			return inv, fmt.Errorf("seed vcenter %s: %w", step.what, err)
		}
	}
	for i, h := range s.hosts {
		host, err := s.seedSVM(ctx, i, h)
		if err != nil {
			return inv, fmt.Errorf("seed vcenter host %s: %w", HostName(i), err)
		}
		inv.Hosts = append(inv.Hosts, host)
	}
	if !cfg.UnpinnedSeed {
		if err := s.pinSeeded(ctx, s.clusterObj, s.svms); err != nil {
			return inv, fmt.Errorf("seed vcenter: pin old SVMs: %w", err)
		}
	}
	// The simulator's tasks spend most of their time waiting, not
	// computing: creating the protected VMs side by side is what makes a
	// 4096-VM lab take seconds instead of minutes.
	if s.cfg.SecondDatacenter {
		other, err := s.secondDatacenter(ctx)
		if err != nil {
			return inv, fmt.Errorf("seed vcenter %s: %w", SecondDatacenter, err)
		}
		inv.Others = append(inv.Others, other)
	}
	per := s.cfg.VMsPerHost
	protected := make([]*object.VirtualMachine, len(s.hosts)*max(per, 0))
	err := parallel(ctx, seedWorkers, len(s.hosts)*per, func(ctx context.Context, k int) error {
		i, n := k/per, k%per
		var err error
		protected[k], err = s.createVM(ctx, s.hosts[i], vmSpec{
			name: inv.Hosts[i].ProtectedVMs[n], guest: "windows2019srv_64Guest", cpus: 2, memoryMB: ProtectedVMMemoryMB,
			datastore: SharedDatastore, network: s.dvpgNet, ip: inv.Hosts[i].ProtectedIPs[n],
		})
		if err != nil {
			return fmt.Errorf("seed vcenter host %s: %w", HostName(i), err)
		}
		return nil
	})
	if err == nil && s.cfg.ProtectedVMsStay && len(protected) > 0 {
		if err := s.holdProtected(ctx, protected); err != nil {
			return inv, fmt.Errorf("seed vcenter: hold protected VMs: %w", err)
		}
	}
	return inv, err
}

func (s *seeder) datacenter(ctx context.Context) error {
	dc, err := object.NewRootFolder(s.c).CreateDatacenter(ctx, Datacenter)
	if err != nil {
		return err
	}
	s.finder.SetDatacenter(dc)
	s.folders, err = dc.Folders(ctx)
	return err
}

// secondDatacenter seeds SecondDatacenter with SecondHost, standalone,
// its local datastore and its old SVM. It reuses the seeder's folders and
// pool for the VM and restores them, so it runs after the first site.
func (s *seeder) secondDatacenter(ctx context.Context) (OtherDatacenter, error) {
	out := OtherDatacenter{Name: SecondDatacenter}
	dc, err := object.NewRootFolder(s.c).CreateDatacenter(ctx, SecondDatacenter)
	if err != nil {
		return out, err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return out, err
	}
	task, err := folders.HostFolder.AddStandaloneHost(ctx, types.HostConnectSpec{HostName: SecondHost}, true, nil, nil)
	if err != nil {
		return out, err
	}
	info, err := s.await(ctx, task)
	if err != nil {
		return out, fmt.Errorf("add host %s: %w", SecondHost, err)
	}
	// The simulator's AddStandaloneHost answers with the host itself.
	h := object.NewHostSystem(s.c, info.Result.(types.ManagedObjectReference))
	pool, err := h.ResourcePool(ctx)
	if err != nil {
		return out, err
	}
	local := filepath.Join(s.dir, LocalDatastoreName(SecondHost))
	if err := os.Mkdir(local, 0o755); err != nil {
		return out, err
	}
	dss, err := h.ConfigManager().DatastoreSystem(ctx)
	if err != nil {
		return out, err
	}
	if _, err := dss.CreateLocalDatastore(ctx, LocalDatastoreName(SecondHost), local); err != nil {
		return out, err
	}
	finder := find.NewFinder(s.c)
	finder.SetDatacenter(dc)
	network, err := finder.Network(ctx, VMNetwork)
	if err != nil {
		return out, err
	}
	backing, err := network.EthernetCardBackingInfo(ctx)
	if err != nil {
		return out, err
	}
	host := Host{Name: SecondHost, LocalDatastore: LocalDatastoreName(SecondHost), OldSVM: SVMName(SecondHost, s.cfg.OldVersion)}
	firstFolders, firstPool := s.folders, s.pool
	s.folders, s.pool = folders, pool
	defer func() { s.folders, s.pool = firstFolders, firstPool }()
	svm, err := s.createVM(ctx, h, vmSpec{
		name: host.OldSVM, guest: "debian10_64Guest", cpus: 2, memoryMB: 4096,
		datastore: host.LocalDatastore, network: backing, product: !s.cfg.Unmarked,
	})
	if err != nil {
		return out, err
	}
	if !s.cfg.Unmarked {
		if err := s.mark(ctx, svm, SecondHost); err != nil {
			return out, fmt.Errorf("mark %s: %w", host.OldSVM, err)
		}
	}
	out.Hosts = append(out.Hosts, host)
	return out, nil
}

func (s *seeder) cluster(ctx context.Context) error {
	cluster, err := s.folders.HostFolder.CreateCluster(ctx, Cluster, types.ClusterConfigSpecEx{})
	if err != nil {
		return err
	}
	s.clusterObj = cluster
	if err := s.clusterServices(ctx, cluster); err != nil {
		return fmt.Errorf("turn on DRS and HA: %w", err)
	}
	for i := range s.cfg.Hosts {
		task, err := cluster.AddHost(ctx, types.HostConnectSpec{HostName: HostName(i)}, true, nil, nil)
		if err != nil {
			return err
		}
		info, err := task.WaitForResult(ctx, nil)
		if err != nil {
			return fmt.Errorf("add host %s: %w", HostName(i), err)
		}
		s.hosts = append(s.hosts, object.NewHostSystem(s.c, info.Result.(types.ManagedObjectReference)))
	}
	s.pool, err = cluster.ResourcePool(ctx)
	return err
}

func (s *seeder) networks(ctx context.Context) error {
	spec := types.DVSCreateSpec{ConfigSpec: &types.VMwareDVSConfigSpec{}}
	spec.ConfigSpec.GetDVSConfigSpec().Name = DVSwitch
	task, err := s.folders.NetworkFolder.CreateDVS(ctx, spec)
	if err != nil {
		return err
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return fmt.Errorf("create %s: %w", DVSwitch, err)
	}
	dvs := object.NewDistributedVirtualSwitch(s.c, info.Result.(types.ManagedObjectReference))
	// The simulator ignores hosts in the create spec: join them afterwards.
	members := &types.DVSConfigSpec{}
	for _, h := range s.hosts {
		members.Host = append(members.Host, types.DistributedVirtualSwitchHostMemberConfigSpec{
			Operation: string(types.ConfigSpecOperationAdd), Host: h.Reference()})
	}
	if task, err = dvs.Reconfigure(ctx, members); err != nil {
		return err
	}
	if err := task.Wait(ctx); err != nil {
		return fmt.Errorf("add hosts to %s: %w", DVSwitch, err)
	}
	task, err = dvs.AddPortgroup(ctx, []types.DVPortgroupConfigSpec{{
		Name: DVPortgroup, Type: string(types.DistributedVirtualPortgroupPortgroupTypeEarlyBinding), NumPorts: 256,
	}})
	if err != nil {
		return err
	}
	if err := task.Wait(ctx); err != nil {
		return fmt.Errorf("add port group %s: %w", DVPortgroup, err)
	}
	for name, backing := range map[string]*types.BaseVirtualDeviceBackingInfo{VMNetwork: &s.vmNet, DVPortgroup: &s.dvpgNet} {
		net, err := s.finder.Network(ctx, name)
		if err != nil {
			return err
		}
		if *backing, err = net.EthernetCardBackingInfo(ctx); err != nil {
			return err
		}
	}
	return nil
}

// datastores creates a local datastore per host and one shared by all;
// the simulator shares a datastore that several hosts create under one
// name and path.
func (s *seeder) datastores(ctx context.Context) error {
	shared := filepath.Join(s.dir, SharedDatastore)
	if err := os.Mkdir(shared, 0o755); err != nil {
		return err
	}
	for i, h := range s.hosts {
		local := filepath.Join(s.dir, LocalDatastoreName(HostName(i)))
		if err := os.Mkdir(local, 0o755); err != nil {
			return err
		}
		dss, err := h.ConfigManager().DatastoreSystem(ctx)
		if err != nil {
			return err
		}
		if _, err := dss.CreateLocalDatastore(ctx, LocalDatastoreName(HostName(i)), local); err != nil {
			return err
		}
		if _, err := dss.CreateLocalDatastore(ctx, SharedDatastore, shared); err != nil {
			return err
		}
	}
	return nil
}

func (s *seeder) fields(ctx context.Context) error {
	if s.cfg.Unmarked {
		return nil // wizard-deployed SVMs: the attribute definitions do not exist either
	}
	m, err := object.GetCustomFieldsManager(s.c)
	if err != nil {
		return err
	}
	for _, name := range vsphere.Marks {
		if _, err := m.Add(ctx, name, "VirtualMachine", nil, nil); err != nil {
			return fmt.Errorf("add %s: %w", name, err)
		}
	}
	return nil
}

// seedSVM creates and marks host's old SVM and names its protected VMs.
func (s *seeder) seedSVM(ctx context.Context, i int, h *object.HostSystem) (Host, error) {
	name := HostName(i)
	host := Host{Name: name, LocalDatastore: LocalDatastoreName(name), OldSVM: SVMName(name, s.cfg.OldVersion)}

	svm, err := s.createVM(ctx, h, vmSpec{
		name: host.OldSVM, guest: "debian10_64Guest", cpus: 2, memoryMB: SVMMemoryMB,
		datastore: host.LocalDatastore, network: s.vmNet, product: !s.cfg.Unmarked,
	})
	if err != nil {
		return host, err
	}
	s.svms = append(s.svms, svm)
	if !s.cfg.Unmarked {
		if err := s.mark(ctx, svm, name); err != nil {
			return host, fmt.Errorf("mark %s: %w", host.OldSVM, err)
		}
	}
	host.ProtectedVMs = make([]string, s.cfg.VMsPerHost)
	host.ProtectedIPs = make([]string, s.cfg.VMsPerHost)
	for n := range s.cfg.VMsPerHost {
		host.ProtectedVMs[n] = ProtectedVMName(name, n)
		host.ProtectedIPs[n] = protectedIP(i, n)
	}
	return host, nil
}

// protectedIP is the guest IP of host i's n-th protected VM:
// 10.20.<i+1>.11 onwards, moving to 10.21 after 240 VMs.
func protectedIP(i, n int) string {
	return fmt.Sprintf("10.%d.%d.%d", 20+n/240, i+1, 11+n%240)
}

// seedWorkers is how many protected VMs are created at once.
const seedWorkers = 16

// parallel runs f(0..n-1) on up to workers goroutines and returns the
// first error; after an error no new index is started.
func parallel(ctx context.Context, workers, n int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
	for i := range n {
		select {
		case next <- i:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return ctx.Err()
}

type vmSpec struct {
	name      string
	guest     string
	cpus      int32
	memoryMB  int64
	datastore string
	network   types.BaseVirtualDeviceBackingInfo
	product   bool   // carry the Protection Server vApp product, as an imported SVM does
	ip        string // guest IP the VM reports (with VMware Tools running); none if empty
}

// createVM creates a VM on host and powers it on.
func (s *seeder) createVM(ctx context.Context, host *object.HostSystem, v vmSpec) (*object.VirtualMachine, error) {
	ds := "[" + v.datastore + "]"
	spec := types.VirtualMachineConfigSpec{
		Name: v.name, GuestId: v.guest, NumCPUs: v.cpus, MemoryMB: v.memoryMB,
		Files: &types.VirtualMachineFileInfo{VmPathName: ds},
	}
	spec.ExtraConfig = runtimeStates()
	if v.ip != "" {
		spec.ExtraConfig = append(spec.ExtraConfig, guestIPConfig(v.ip)...)
	}
	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		return nil, err
	}
	disk := devices.CreateDisk(scsi.(types.BaseVirtualController), types.ManagedObjectReference{}, ds+" "+v.name+"/"+v.name+".vmdk")
	disk.CapacityInKB = 20 << 20 // 20 GiB
	nic, err := devices.CreateEthernetCard("vmxnet3", v.network)
	if err != nil {
		return nil, err
	}
	devices = append(devices, scsi, disk, nic)
	if spec.DeviceChange, err = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd); err != nil {
		return nil, err
	}
	if v.product {
		product := images.DefaultProduct
		if s.cfg.Product != "" {
			product = s.cfg.Product
		}
		spec.VAppConfig = &types.VmConfigSpec{Product: []types.VAppProductSpec{{
			ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
			Info: &types.VAppProductInfo{Key: 0, Name: product, Vendor: images.DefaultVendor,
				Version: s.cfg.OldVersion, FullVersion: s.cfg.OldVersion},
		}}}
	}
	task, err := s.folders.VmFolder.CreateVM(ctx, spec, s.pool, host)
	if err != nil {
		return nil, err
	}
	info, err := s.await(ctx, task)
	if err != nil {
		return nil, fmt.Errorf("create vm %s: %w", v.name, err)
	}
	vm := object.NewVirtualMachine(s.c, info.Result.(types.ManagedObjectReference))
	task, err = vm.PowerOn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.await(ctx, task); err != nil {
		return nil, fmt.Errorf("power on vm %s: %w", v.name, err)
	}
	return vm, nil
}

// await polls task until it ends. Not task.Wait: each wait is a property
// collector, and the simulator hands every collector every change in the
// inventory, so thousands of waits side by side cost time that grows
// with the square of the VMs seeded.
func (s *seeder) await(ctx context.Context, task *object.Task) (types.TaskInfo, error) {
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		var t mo.Task
		if err := property.DefaultCollector(s.c).RetrieveOne(ctx, task.Reference(), []string{"info"}, &t); err != nil {
			return types.TaskInfo{}, err
		}
		switch t.Info.State {
		case types.TaskInfoStateSuccess:
			return t.Info, nil
		case types.TaskInfoStateError:
			if t.Info.Error != nil {
				return t.Info, errors.New(t.Info.Error.LocalizedMessage)
			}
			return t.Info, errors.New("task failed")
		}
		select {
		case <-ctx.Done():
			return t.Info, ctx.Err()
		case <-time.After(delay):
		}
	}
}

func (s *seeder) mark(ctx context.Context, vm *object.VirtualMachine, host string) error {
	sha := s.cfg.OldImageSHA256
	if sha == "" {
		desc, err := images.Descriptor(images.Spec{Version: s.cfg.OldVersion, Product: s.cfg.Product})
		if err != nil {
			return err
		}
		sum := sha256.Sum256(desc)
		sha = hex.EncodeToString(sum[:])
	}
	m, err := object.GetCustomFieldsManager(s.c)
	if err != nil {
		return err
	}
	values := map[string]string{
		vsphere.MarkRole:        vsphere.RoleSVM,
		vsphere.MarkVersion:     s.cfg.OldVersion,
		vsphere.MarkImageSHA256: sha,
		vsphere.MarkDeployedBy:  vsphere.DeployedBy,
		vsphere.MarkHost:        host,
	}
	for _, name := range vsphere.Marks {
		key, err := m.FindKey(ctx, name)
		if err != nil {
			return err
		}
		if err := m.Set(ctx, vm.Reference(), key, values[name]); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

// runtimeStates sets the two runtime enums every real vCenter VM
// carries and the simulator leaves empty (pyVmomi 8, and so
// community.vmware, cannot read a VM with an empty enum value).
func runtimeStates() []types.BaseOptionValue {
	var out []types.BaseOptionValue
	for _, p := range []string{"runtime.", "summary.runtime."} {
		out = append(out,
			&types.OptionValue{Key: "SET." + p + "faultToleranceState", Value: string(types.VirtualMachineFaultToleranceStateNotConfigured)},
			&types.OptionValue{Key: "SET." + p + "recordReplayState", Value: string(types.VirtualMachineRecordReplayStateInactive)})
	}
	return out
}

// guestIPConfig is the simulator's way to make a VM report ip through
// VMware Tools; an empty ip stops the tools.
func guestIPConfig(ip string) []types.BaseOptionValue {
	tools := string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
	if ip == "" {
		tools = string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)
	}
	return []types.BaseOptionValue{
		&types.OptionValue{Key: "SET.guest.ipAddress", Value: ip},
		&types.OptionValue{Key: "SET.guest.toolsRunningStatus", Value: tools},
	}
}

// setGuestIP also sets the runtime states seeded VMs carry: VMs imported
// later (svm_deploy's SVMs) get them when the lab publishes their address,
// so pyVmomi tools read them after an upgrade as before it.
func setGuestIP(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference, ip string) error {
	extra := append(guestIPConfig(ip), runtimeStates()...)
	task, err := object.NewVirtualMachine(c, ref).Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: extra})
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}
