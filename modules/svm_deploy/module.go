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
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/ksvla/lightagent/modules/conn"
)

// module is svm_deploy's phases; New makes a fresh one per run. Observe
// and Apply share one vCenter session, closed by the runtime (Sessions).
type module struct {
	conn.Sessions
	// in is the options as Observe checked and normalised them, once.
	in input
}

var (
	_ ansible.Phases[Options, observed, *Plan] = (*module)(nil)
	_ ansible.Applies[Options, *Plan]          = (*module)(nil)
)

// New returns the module.
func New() ansible.Module { return ansible.Typed[Options, observed, *Plan](&module{}) }

// Spec returns the option spec.
func (*module) Spec() ansible.Spec { return spec() }

// input is the options with the checks the spec cannot express done and
// the values normalised.
type input struct {
	Options
	networks     map[string]string
	firstBoot    []string
	firstBootSet bool
}

// check checks and normalises the decoded options; firstBootSet says
// whether the user gave first_boot.
func check(o Options, firstBootSet bool) (input, error) {
	in := input{Options: o, firstBootSet: firstBootSet}
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
func (m *module) Observe(ctx context.Context, c *ansible.Call[Options]) (observed, error) {
	in, err := check(c.Options, c.Params.IsSet("first_boot"))
	if err != nil {
		return observed{}, err
	}
	m.in = in
	s, err := m.VCenter(ctx, in.VCenterOptions)
	if err != nil {
		return observed{}, err
	}
	obs, err := observe(ctx, s, in, c.Response)
	if err != nil {
		return observed{}, err
	}
	if in.State == StateAbsent && len(obs.Existing) == 1 && checkOurs(in.Options, obs, obs.Existing[0]) == nil {
		r, err := m.checkRemoval(ctx, s, in.Options, obs.Host, obs.Existing[0].Moid)
		if err != nil {
			return observed{}, err
		}
		obs.Removal = &r
		r.warn(c.Response)
		if in.Force {
			c.Warn("force=true: the Light Agent and unknown-VM gates are skipped; the last-SVM gate still applies")
		}
	}
	if len(obs.Existing) == 1 {
		cur := &obs.Existing[0]
		// Waiting is read-only, and "returned as is" must include the IP
		// the playbook asked to wait for.
		if in.State == StatePresent && in.PowerOn && in.WaitForIP && !c.CheckMode &&
			cur.PowerState == "poweredOn" && cur.IP == "" && checkOurs(in.Options, obs, *cur) == nil {
			ip, err := s.WaitForIP(ctx, s.VMRef(cur.Moid), time.Duration(in.WaitTimeout)*time.Second)
			if err != nil {
				return observed{}, err
			}
			cur.IP = ip
		}
	}
	return obs, nil
}

// Plan decides what to do; every refusal happens here, in check mode too.
func (*module) Plan(c *ansible.Call[Options], obs observed) (*Plan, error) {
	o := c.Options
	p, err := plan(o, obs)
	if err != nil {
		return nil, err
	}
	switch {
	case p.Empty() && o.State == StateAbsent:
		c.Msg = fmt.Sprintf("no VM named %s: nothing to remove", o.Name)
	case p.Empty():
		c.Msg = fmt.Sprintf("SVM %s (version %s) exists on %s: nothing to do", o.Name, p.Before.Version, obs.Host)
	case c.CheckMode:
		c.Msg = fmt.Sprintf("SVM %s on %s: would %s", o.Name, obs.Host, strings.Join(p.Steps, ", "))
	}
	return &p, nil
}

// Apply runs the plan's steps in order and records in it what they did.
func (m *module) Apply(ctx context.Context, c *ansible.Call[Options], p *Plan) error {
	in := m.in
	s, err := m.VCenter(ctx, in.VCenterOptions)
	if err != nil {
		return err
	}
	if p.Has(StepDestroy) {
		// Read again right before the deletion: an agent update may have
		// moved agents onto this SVM since Observe.
		r, err := m.checkRemoval(ctx, s, in.Options, p.Before.Host, p.VM)
		if err != nil {
			return err
		}
		p.Gates = r.Gates
		if !r.Gates.Passed() {
			return fleet.BlockedAtRemovalError(r.SVM, r.Gates, "none")
		}
	}
	return apply(ctx, s, in, p, c.Response)
}

func apply(ctx context.Context, s *vsphere.Session, in input, p *Plan, resp *ansible.Response) error {
	t, err := s.FindTarget(ctx, vsphere.TargetSpec{Datacenter: in.Datacenter, Host: in.ESXiHostname})
	if err != nil {
		return err
	}
	if p.Has(StepCleanup) {
		if err := cleanup(ctx, s, t, in.Name, p, resp); err != nil {
			return err
		}
	}
	vm := s.VMRef(p.VM)
	if p.Has(StepDestroy) {
		if err := s.Destroy(ctx, vm); err != nil && !errors.Is(err, vsphere.ErrNotFound) {
			return err
		}
		p.SVM = nil // the VM Observe read is gone
		resp.Msg = fmt.Sprintf("SVM %s removed from %s", in.Name, p.Before.Host)
		return nil
	}
	if p.Has(StepImport) {
		res, err := importSVM(ctx, s, in, p, resp)
		if err != nil {
			return err
		}
		vm = res.VM
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
		if err := t.MoveHere(ctx, vm); err != nil {
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
	d, err := s.ReadVM(ctx, vm)
	if err != nil {
		return err
	}
	info := fromDetail(d)
	p.SVM = svmView(info)
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
func cleanup(ctx context.Context, s *vsphere.Session, t vsphere.Target, name string, p *Plan, resp *ansible.Response) error {
	lo, err := t.Leftover(ctx, name)
	if err != nil || lo == nil {
		return err
	}
	paths := lo.VMPaths()
	if err := s.CleanupLeftover(ctx, lo); err != nil {
		return err
	}
	p.Removed = paths
	resp.Warn(fmt.Sprintf("removed %s: half-created by an interrupted run (its import never completed)", strings.Join(paths, ", ")))
	return nil
}

// importSVM streams the image and records the upload.
func importSVM(ctx context.Context, s *vsphere.Session, in input, p *Plan, resp *ansible.Response) (*vsphere.ImportResult, error) {
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
	p.Upload = &upload{Bytes: res.Bytes, Seconds: round(res.Upload.Seconds(), 3), MiBPerS: round(res.Throughput/(1<<20), 2)}
	return res, nil
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}
