// Package svmdeploy is the svm_deploy module: it deploys one KSVLA SVM from
// an OVA/OVF onto one ESXi host, marks it, sets its first-boot commands,
// powers it on and waits for its IP, idempotently; or removes an SVM it
// (or the lab's admin) marked.
package svmdeploy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/ksvla/lightagent/modules/conn"
)

// Module is svm_deploy. Observe and Apply share one vCenter session.
type Module struct{ conn.Sessions }

var (
	_ ansible.Module  = (*Module)(nil)
	_ ansible.Applier = (*Module)(nil)
	_ ansible.Closer  = (*Module)(nil)
)

// New returns the module.
func New() ansible.Module { return &Module{} }

// Spec returns the option spec.
func (*Module) Spec() ansible.Spec { return spec() }

// input is the decoded options with the checks the spec cannot express
// done and the values normalised.
type input struct {
	Options
	networks     map[string]string
	firstBoot    []string
	firstBootSet bool
}

func decode(req *ansible.Request) (input, error) {
	var in input
	if err := req.Params.Decode(&in.Options); err != nil {
		return in, err
	}
	o := in.Options
	if o.CPUs < 0 {
		return in, fmt.Errorf("cpus must be positive, got %d", o.CPUs)
	}
	if o.MemoryMB < 0 {
		return in, fmt.Errorf("memory_mb must be positive, got %d", o.MemoryMB)
	}
	if o.WaitTimeout <= 0 {
		return in, fmt.Errorf("wait_timeout must be positive, got %d", o.WaitTimeout)
	}
	if o.Version != "" {
		if err := fleet.CheckVersion("version", o.Version); err != nil {
			return in, err
		}
	}
	if o.ImageSHA256 != "" {
		sum, err := vsphere.NormalizeSHA256(o.ImageSHA256)
		if err != nil {
			return in, fmt.Errorf("image_sha256: %w", err)
		}
		in.ImageSHA256 = sum
	}
	in.networks = make(map[string]string, len(o.Networks))
	for k, v := range o.Networks {
		s, ok := v.(string)
		if !ok || s == "" {
			return in, fmt.Errorf("networks: the value of %q must be a vSphere network name", k)
		}
		in.networks[k] = s
	}
	in.firstBootSet = req.Params.IsSet("first_boot")
	var err error
	if in.firstBoot, err = firstBootCommands(o.FirstBoot); err != nil {
		return in, err
	}
	return in, nil
}

func (in input) imageCheck() vsphere.ImageCheck {
	return vsphere.ImageCheck{SHA256: in.ImageSHA256, Trusted: in.ImageTrusted}
}

// Observe resolves the placement, reads the image's descriptor and every
// VM of the requested name (leftovers of interrupted imports apart). It
// changes nothing; it only waits for the IP of an SVM that is already
// running and left as is.
func (m *Module) Observe(ctx context.Context, req *ansible.Request, resp *ansible.Response) (ansible.Observed, error) {
	in, err := decode(req)
	if err != nil {
		return nil, err
	}
	s, err := m.VCenter(ctx, in.Options.VCenterOptions)
	if err != nil {
		return nil, err
	}
	obs, err := observe(ctx, s, in, resp)
	if err != nil {
		return nil, withTimeout(err, in.Options)
	}
	if in.State == StateAbsent && len(obs.Existing) == 1 && checkOurs(in.Options, obs, obs.Existing[0]) == nil {
		r, err := m.checkRemoval(ctx, s, in.Options, obs.Host, obs.Existing[0].Moid)
		if err != nil {
			return nil, withTimeout(err, in.Options)
		}
		obs.Removal = &r
		r.report(resp)
		if in.Force {
			resp.Warn("force=true: the Light Agent and unknown-VM gates are skipped; the last-SVM gate still applies")
		}
	}
	if len(obs.Existing) == 1 {
		cur := &obs.Existing[0]
		// Waiting is read-only, and "returned as is" must include the IP
		// the playbook asked to wait for.
		if in.State == StatePresent && in.PowerOn && in.WaitForIP && !req.CheckMode &&
			cur.PowerState == "poweredOn" && cur.IP == "" && checkOurs(in.Options, obs, *cur) == nil {
			vm := vmObject(s, cur.Moid)
			ip, err := s.WaitForIP(ctx, vm, time.Duration(in.WaitTimeout)*time.Second)
			if err != nil {
				return nil, withTimeout(err, in.Options)
			}
			cur.IP = ip
		}
		resp.Set("svm", svmView(*cur))
	}
	return obs, nil
}

func observe(ctx context.Context, s *vsphere.Session, in input, resp *ansible.Response) (observed, error) {
	var obs observed
	dc, err := s.Datacenter(ctx, in.Datacenter)
	if err != nil {
		return obs, err
	}
	host, err := s.Host(ctx, dc, in.ESXiHostname)
	if err != nil {
		return obs, err
	}
	if obs.Host, err = entityName(ctx, s, host.Reference()); err != nil {
		return obs, fmt.Errorf("read host %s: %w", in.ESXiHostname, err)
	}
	var stores []*object.Datastore
	var target *object.Datastore
	var image *vsphere.Descriptor
	if in.State == StatePresent {
		ds, err := s.Datastore(ctx, dc, in.Datastore)
		if err != nil {
			return obs, err
		}
		stores = append(stores, ds)
		if obs.Datastore, err = entityName(ctx, s, ds.Reference()); err != nil {
			return obs, fmt.Errorf("read datastore %s: %w", in.Datastore, err)
		}
		// Found now so check mode fails where the deployment would.
		if _, err := s.Folder(ctx, dc, in.Folder); err != nil {
			return obs, err
		}
		if _, err := s.ResourcePool(ctx, dc, host, in.ResourcePool); err != nil {
			return obs, err
		}
		desc, err := vsphere.ReadDescriptor(ctx, in.Image)
		if err != nil {
			return obs, err
		}
		// Refused here, in check mode too, before vCenter is asked to
		// create anything; Import checks again.
		warn, err := desc.Verification(in.imageCheck())
		if err != nil {
			return obs, fmt.Errorf("image: %w", err)
		}
		if warn != "" {
			resp.Warn("image_trusted=true: " + warn)
		}
		target, image = ds, desc
		if obs.Version, err = resolveVersion(in.Version, desc); err != nil {
			return obs, err
		}
		if err := checkNetworks(ctx, s, dc, in.networks, desc.Networks); err != nil {
			return obs, err
		}
		obs.ImageSHA256 = desc.ImageSHA256
		obs.FirstBoot = in.firstBoot
		if err := observeHost(ctx, s, host, ds, in, desc, &obs); err != nil {
			return obs, err
		}
	}

	lo, err := s.FindLeftover(ctx, dc, in.Name, stores...)
	if err != nil {
		return obs, err
	}
	skip := map[string]bool{}
	if lo != nil {
		for _, vm := range lo.VMs {
			skip[vm.Reference().Value] = true
			obs.LeftoverVMs = append(obs.LeftoverVMs, vm.InventoryPath)
		}
		obs.LeftoverFolders = lo.Folders
	}
	if obs.Existing, err = readVMs(ctx, s, dc, in.Name, skip); err != nil {
		return obs, err
	}
	if in.State == StatePresent && len(obs.Existing) == 0 {
		// An import is due: what vCenter would refuse, or a wrong image, is
		// refused now, in check mode too. Not on a rerun, where the SVM's own
		// disks may have taken the space its upload needed.
		if err := s.CheckPlacement(ctx, host, target, image, in.DiskProvisioning); err != nil {
			return obs, fmt.Errorf("datastore: %w", err)
		}
		// One read of the file; Import reads it again right before the
		// upload, as the file may change in between.
		if in.ImageSHA256 != "" {
			if err := vsphere.VerifyImageSHA256(ctx, in.Image, in.ImageSHA256); err != nil {
				return obs, fmt.Errorf("image_sha256: %w", err)
			}
		}
	}
	if in.State == StatePresent && len(obs.Existing) == 1 {
		warnDrift(in, obs, obs.Existing[0], resp)
	}
	if len(obs.Existing) == 1 {
		if cur := obs.Existing[0]; cur.ours() && (cur.Host == obs.Host || cur.Marks[vsphere.MarkHost] == obs.Host) {
			pl, err := s.Placement(ctx, vmObject(s, cur.Moid))
			if err != nil {
				return obs, err
			}
			obs.Pin = &pl
		}
	}
	return obs, nil
}

// observeHost reads what a new SVM on host needs to be pinned and whether
// the host and datastore have room for it (the image's figures, or the
// cpus and memory_mb options that override them).
func observeHost(ctx context.Context, s *vsphere.Session, host *object.HostSystem, ds *object.Datastore,
	in input, desc *vsphere.Descriptor, obs *observed) error {
	hp, err := s.HostPlacement(ctx, host)
	if err != nil {
		return err
	}
	obs.HostPin = &hp
	c, err := s.Capacity(ctx, host, ds)
	if err != nil {
		return err
	}
	obs.Capacity = &c
	obs.Need = need{CPUs: desc.CPUs, MemoryMB: desc.MemoryMB, DiskBytes: desc.DiskCapacityBytes}
	if in.CPUs > 0 {
		obs.Need.CPUs = in.CPUs
	}
	if in.MemoryMB > 0 {
		obs.Need.MemoryMB = int64(in.MemoryMB)
	}
	return nil
}

// resolveVersion picks the Protection Server version to deploy: the
// option, checked against the image's ProductSection, or the image's.
func resolveVersion(want string, desc *vsphere.Descriptor) (string, error) {
	have := desc.Version
	if have == "" {
		have = desc.FullVersion
	}
	switch {
	case want == "" && have == "":
		return "", fmt.Errorf("image %s declares no version in its ProductSection: set option version", desc.Source)
	case want == "":
		return have, nil
	case have != "" && have != want:
		return "", fmt.Errorf("image %s carries Protection Server version %s, but option version is %s", desc.Source, have, want)
	}
	return want, nil
}

// checkNetworks fails, in check mode too, on a mapping the import would
// refuse: an OVF network the image does not have or a missing vSphere one.
func checkNetworks(ctx context.Context, s *vsphere.Session, dc *object.Datacenter, m map[string]string, ovfNets []string) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		found := false
		for _, o := range ovfNets {
			found = found || o == n
		}
		if !found {
			return fmt.Errorf("networks: the image has no network %q (it has: %s)", n, strings.Join(ovfNets, ", "))
		}
		if _, err := s.Network(ctx, dc, m[n]); err != nil {
			return fmt.Errorf("networks %q: %w", n, err)
		}
	}
	return nil
}

// warnDrift tells about settings that only apply at creation and differ
// on the SVM that is left as is.
func warnDrift(in input, obs observed, cur vmInfo, resp *ansible.Response) {
	if !cur.ours() || cur.Host != obs.Host || cur.version() != obs.Version {
		return // Plan refuses it with its own message
	}
	if in.firstBootSet && strings.Join(cur.FirstBoot, "\n") != strings.Join(in.firstBoot, "\n") {
		resp.Warn(fmt.Sprintf("SVM %s exists: first_boot only applies when it is created, and its first-boot commands differ; left as is", in.Name))
	}
	if sum := cur.Marks[vsphere.MarkImageSHA256]; sum != "" && sum != obs.ImageSHA256 {
		resp.Warn(fmt.Sprintf("SVM %s (version %s) was deployed from another image (%s %s, this image %s); left as is",
			in.Name, obs.Version, vsphere.MarkImageSHA256, sum, obs.ImageSHA256))
	}
}

func vmObject(s *vsphere.Session, moid string) *object.VirtualMachine {
	return object.NewVirtualMachine(s.Client(), types.ManagedObjectReference{Type: "VirtualMachine", Value: moid})
}

// withTimeout names the option to raise when the module's deadline ran out.
func withTimeout(err error, o Options) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (the module ran out of time: option timeout is %d s)", err, o.Timeout)
	}
	return err
}

// Plan decides what to do; every refusal happens here, in check mode too.
func (*Module) Plan(req *ansible.Request, st ansible.Observed, resp *ansible.Response) (ansible.Plan, error) {
	in, err := decode(req)
	if err != nil {
		return nil, err
	}
	obs := st.(observed)
	p, err := plan(in.Options, obs)
	if err != nil {
		return nil, err
	}
	resp.Set("plan", nonNil(p.Steps))
	switch {
	case p.Empty() && in.State == StateAbsent:
		resp.Msg = fmt.Sprintf("no VM named %s: nothing to remove", in.Name)
	case p.Empty():
		resp.Msg = fmt.Sprintf("SVM %s (version %s) exists on %s: nothing to do", in.Name, p.Before.Version, obs.Host)
	case req.CheckMode:
		resp.Msg = fmt.Sprintf("SVM %s on %s: would %s", in.Name, obs.Host, strings.Join(p.Steps, ", "))
	}
	return p, nil
}

// Apply runs the plan's steps in order.
func (m *Module) Apply(ctx context.Context, req *ansible.Request, pl ansible.Plan, resp *ansible.Response) error {
	in, err := decode(req)
	if err != nil {
		return err
	}
	s, err := m.VCenter(ctx, in.Options.VCenterOptions)
	if err != nil {
		return err
	}
	p := pl.(Plan)
	if p.Has(StepDestroy) {
		// Read again right before the deletion: an agent update may have
		// moved agents onto this SVM since Observe.
		r, err := m.checkRemoval(ctx, s, in.Options, p.Before.Host, p.VM)
		if err != nil {
			return withTimeout(err, in.Options)
		}
		resp.Set("gates", r.Gates)
		if !r.Gates.Passed() {
			return fleet.BlockedAtRemovalError(r.SVM, r.Gates, "none")
		}
	}
	return withTimeout(apply(ctx, s, in, p, resp), in.Options)
}

func apply(ctx context.Context, s *vsphere.Session, in input, p Plan, resp *ansible.Response) error {
	dc, err := s.Datacenter(ctx, in.Datacenter)
	if err != nil {
		return err
	}
	if p.Has(StepCleanup) {
		if err := cleanup(ctx, s, dc, in.Name, resp); err != nil {
			return err
		}
	}
	var vm *object.VirtualMachine
	if p.VM != "" {
		vm = vmObject(s, p.VM)
	}
	if p.Has(StepDestroy) {
		if err := s.Destroy(ctx, vm); err != nil && !errors.Is(err, vsphere.ErrNotFound) {
			return err
		}
		delete(resp.Values, "svm") // Observe's view of the VM that is gone now
		resp.Msg = fmt.Sprintf("SVM %s removed from %s", in.Name, p.Before.Host)
		return nil
	}
	if p.Has(StepImport) {
		if vm, err = importSVM(ctx, s, in, p, resp); err != nil {
			return err
		}
	}
	if vm == nil {
		// Only a cleanup was planned (state=absent with a leftover).
		resp.Msg = fmt.Sprintf("leftovers of %s removed", in.Name)
		return nil
	}
	if p.Has(StepMarks) {
		if err := s.SetMarks(ctx, vm, p.Marks); err != nil {
			return err
		}
	}
	if p.Has(StepMoveBack) {
		host, err := s.Host(ctx, dc, in.ESXiHostname)
		if err != nil {
			return err
		}
		if err := s.Migrate(ctx, vm, host); err != nil {
			return err
		}
	}
	if p.Has(StepPin) {
		pl, err := s.Placement(ctx, vm)
		if err != nil {
			return err
		}
		if err := s.Pin(ctx, pl); err != nil {
			return err
		}
	}
	if p.Has(StepPowerOn) {
		if err := s.PowerOn(ctx, vm); err != nil {
			return err
		}
	}
	if p.Has(StepWaitForIP) {
		if _, err := s.WaitForIP(ctx, vm, time.Duration(in.WaitTimeout)*time.Second); err != nil {
			return err
		}
	}
	info, err := readVM(ctx, s, vm)
	if err != nil {
		return err
	}
	resp.Set("svm", svmView(info))
	verb := "deployed"
	if !p.Has(StepImport) {
		verb = "completed"
		switch {
		case p.Has(StepMoveBack):
			verb = "moved back"
		case !p.Has(StepMarks) && p.Has(StepPowerOn):
			verb = "powered on"
		case !p.Has(StepMarks) && p.Has(StepPin):
			verb = "pinned to its host"
		}
	}
	resp.Msg = fmt.Sprintf("SVM %s (version %s) %s on %s, %s", in.Name, info.version(), verb, info.Host, info.PowerState)
	if info.IP != "" {
		resp.Msg += ", IP " + info.IP
	}
	return nil
}

// cleanup removes the half-imported VMs an interrupted run left, found
// afresh: the plan carries paths for the result, not objects.
func cleanup(ctx context.Context, s *vsphere.Session, dc *object.Datacenter, name string, resp *ansible.Response) error {
	lo, err := s.FindLeftover(ctx, dc, name)
	if err != nil || lo == nil {
		return err
	}
	paths := make([]string, len(lo.VMs))
	for i, vm := range lo.VMs {
		paths[i] = vm.InventoryPath
	}
	if err := s.CleanupLeftover(ctx, lo); err != nil {
		return err
	}
	resp.Set("leftover", map[string]any{"vms": paths, "removed": true})
	resp.Warn(fmt.Sprintf("removed %s: half-created by an interrupted run (its import never completed)", strings.Join(paths, ", ")))
	return nil
}

// importSVM streams the image and reports the upload.
func importSVM(ctx context.Context, s *vsphere.Session, in input, p Plan, resp *ansible.Response) (*object.VirtualMachine, error) {
	ec := firstBootConfig(in.firstBoot)
	if ec == nil {
		ec = map[string]string{}
	}
	ec[deployVersionKey] = p.Marks[vsphere.MarkVersion]
	res, err := s.Import(ctx, vsphere.ImportSpec{
		Source: in.Image, Name: in.Name, Datacenter: in.Datacenter, Host: in.ESXiHostname, Datastore: in.Datastore,
		Folder: in.Folder, ResourcePool: in.ResourcePool, Networks: in.networks, DiskProvisioning: in.DiskProvisioning,
		CPUs: in.CPUs, MemoryMB: in.MemoryMB, ExtraConfig: ec, Check: in.imageCheck(),
	})
	if err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		resp.Warn("import spec: " + w)
	}
	resp.Set("upload", map[string]any{
		"bytes":     res.Bytes,
		"seconds":   round(res.Upload.Seconds(), 3),
		"mib_per_s": round(res.Throughput/(1<<20), 2),
	})
	return res.VM, nil
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}
