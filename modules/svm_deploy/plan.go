package svmdeploy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// Steps of a plan, in the order they run.
const (
	StepCleanup   = "cleanup leftover"
	StepImport    = "import"
	StepMarks     = "set marks"
	StepFirstBoot = "set first boot"
	StepMoveBack  = "move back to its host"
	StepPin       = "pin to host"
	StepPowerOn   = "power on"
	StepWaitForIP = "wait for IP"
	StepDestroy   = "destroy"
)

// deployVersionKey is an extraConfig key written in the creation spec of
// every SVM this module imports, holding its Protection Server version. It
// survives the import (only vsphere.ImportMarkerKey is removed), so a VM
// whose run was killed after the upload but before SetMarks is still
// positively ours: the rerun marks it instead of refusing it.
const deployVersionKey = "ksvla.deploy.version"

// vmInfo is what Observe read about one VM of the requested name.
type vmInfo struct {
	Name, Moid, InstanceUUID, Path string
	Host                           string // ESXi host name
	Datastores                     []string
	PowerState, IP                 string
	Marks                          map[string]string
	FirstBoot                      []string
	DeployVersion                  string // extraConfig deployVersionKey
}

// marked reports whether the VM carries the SVM role mark.
func (v vmInfo) marked() bool { return v.Marks[vsphere.MarkRole] == vsphere.RoleSVM }

// ours reports whether the VM is an SVM this collection may manage: marked
// as one, or created by this module's import (marks not written yet).
func (v vmInfo) ours() bool { return v.marked() || v.DeployVersion != "" }

// datastore names the VM's (first) datastore.
func (v vmInfo) datastore() string {
	if len(v.Datastores) == 0 {
		return ""
	}
	return v.Datastores[0]
}

// version is the SVM's Protection Server version as marked.
func (v vmInfo) version() string {
	if m := v.Marks[vsphere.MarkVersion]; m != "" {
		return m
	}
	return v.DeployVersion
}

// observed is what Observe found; Plan decides from it alone.
type observed struct {
	Host      string // the resolved ESXi host's name
	Datastore string // the resolved datastore's name ("" with state=absent)
	// Desired, for state=present.
	Version     string
	ImageSHA256 string
	FirstBoot   []string
	// Leftovers of an interrupted import: half-imported VMs (paths) and
	// datastore folders named like the SVM with no VM registered.
	LeftoverVMs     []string
	LeftoverFolders []string
	// Existing are the other VMs of this name in the datacenter.
	Existing []vmInfo
	// Removal is the gates' verdict on the SVM state=absent would delete.
	Removal *removal
	// Pin is how the one existing VM is held on its host; HostPin what a
	// new SVM on the resolved host needs (state=present).
	Pin, HostPin *vsphere.Placement
	// Capacity is what the host and datastore have free, and Need what
	// the image asks (state=present, no SVM yet).
	Capacity *vsphere.HostCapacity
	Need     need
}

// need is what a new SVM asks of its host.
type need struct {
	CPUs      int
	MemoryMB  int64
	DiskBytes int64
}

// Summary is the SVM as the diff shows it.
type Summary struct {
	Name       string   `json:"name"`
	Host       string   `json:"host"`
	Datastore  string   `json:"datastore"`
	Version    string   `json:"version"`
	PowerState string   `json:"power_state"`
	FirstBoot  []string `json:"first_boot"`
	// Pin: DRS and HA VM overrides and, outside HA, the autostart entry.
	Pin map[string]any `json:"pin,omitempty"`
}

func summarize(v vmInfo) *Summary {
	return &Summary{Name: v.Name, Host: v.Host, Datastore: v.datastore(), Version: v.version(),
		PowerState: v.PowerState, FirstBoot: nonNil(v.FirstBoot)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Report returns what Observe read, for a run that ends before a plan
// (Plan refused): the SVM found and the removal gates' verdict.
func (obs observed) Report() map[string]any {
	var r outcome
	if len(obs.Existing) == 1 {
		r.SVM = svmView(obs.Existing[0])
	}
	if obs.Removal != nil {
		r.Gates = obs.Removal.Gates
	}
	return r.values()
}

// outcome is what a run reports besides its plan: it starts as Observe
// found things and Apply updates it with what it did.
type outcome struct {
	// SVM is the SVM as last read; nil when there is none (or no more).
	SVM *SVM
	// Gates is the removal gates' latest verdict (state=absent).
	Gates fleet.GateResult
	// Removed are the half-imported VMs this run deleted.
	Removed []string
	// Upload is the image upload of this run's import.
	Upload *upload
}

// upload is the `upload` return value.
type upload struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MiBPerS float64 `json:"mib_per_s"`
}

func (r outcome) values() map[string]any {
	out := map[string]any{}
	if r.SVM != nil {
		out["svm"] = r.SVM
	}
	if r.Gates != nil {
		out["gates"] = r.Gates
	}
	if r.Removed != nil {
		out["leftover"] = map[string]any{"vms": r.Removed, "removed": true}
	}
	if r.Upload != nil {
		out["upload"] = r.Upload
	}
	return out
}

// Plan is what the module will do, as a value; Apply records in it what
// it did.
type Plan struct {
	Steps []string
	// VM is the existing SVM's MoRef value the steps act on; "" when the
	// plan imports a new one.
	VM string
	// Marks are written with StepMarks.
	Marks map[string]string
	// Before and After are the SVM's summary; nil means it does not exist.
	Before, After *Summary
	outcome
}

// Report returns the plan's steps and what the run came to.
func (p *Plan) Report() map[string]any {
	out := p.values()
	out["plan"] = nonNil(p.Steps)
	return out
}

// Empty reports whether nothing is to be done.
func (p Plan) Empty() bool { return len(p.Steps) == 0 }

// Diff returns the SVM's summary before and after, {} when absent.
func (p Plan) Diff() (before, after any) { return orEmpty(p.Before), orEmpty(p.After) }

func orEmpty(s *Summary) any {
	if s == nil {
		return map[string]any{}
	}
	return s
}

// Has reports whether the plan holds step.
func (p Plan) Has(step string) bool { return slices.Contains(p.Steps, step) }

// plan decides from the options and what was observed. It makes no I/O:
// every refusal (a VM that is not ours, on another host, of another
// version) is decided here.
func plan(o Options, obs observed) (Plan, error) {
	var p Plan
	if len(obs.LeftoverFolders) > 0 {
		return p, fmt.Errorf("datastore folder %s exists but no VM named %s is registered (an interrupted deletion, or an unregistered VM of someone else): "+
			"delete or register it by hand, or choose another name", strings.Join(obs.LeftoverFolders, ", "), o.Name)
	}
	if len(obs.LeftoverVMs) > 0 {
		p.Steps = append(p.Steps, StepCleanup)
	}
	if len(obs.Existing) > 1 {
		paths := make([]string, len(obs.Existing))
		for i, v := range obs.Existing {
			paths[i] = v.Path
		}
		return Plan{}, fmt.Errorf("%d VMs are named %s: %s; refusing to choose one (VM names must be unique)", len(paths), o.Name, strings.Join(paths, ", "))
	}
	var cur *vmInfo
	if len(obs.Existing) == 1 {
		cur = &obs.Existing[0]
		if err := checkOurs(o, obs, *cur); err != nil {
			return Plan{}, err
		}
		p.VM, p.Before, p.SVM = cur.Moid, summarize(*cur), svmView(*cur)
		if obs.Pin != nil {
			p.Before.Pin = obs.Pin.Settings()
		}
	}
	if obs.Removal != nil {
		p.Gates = obs.Removal.Gates
	}
	if o.State == StateAbsent {
		if cur != nil {
			if obs.Removal != nil && !obs.Removal.Gates.Passed() {
				return Plan{}, obs.Removal.refusal()
			}
			p.Steps = append(p.Steps, StepDestroy)
		}
		return p, nil
	}

	marks := map[string]string{
		vsphere.MarkRole: vsphere.RoleSVM, vsphere.MarkVersion: obs.Version,
		vsphere.MarkImageSHA256: obs.ImageSHA256, vsphere.MarkDeployedBy: vsphere.DeployedBy,
		// A VM this run creates has a host key no one knows yet: only such a VM may have it
		// trusted on first use (svm_klconfig with vm), which clears the mark.
		vsphere.MarkFirstContact: vsphere.FirstContactPending,
		vsphere.MarkHost:         obs.Host,
	}
	if cur == nil {
		if err := checkCapacity(o, obs); err != nil {
			return Plan{}, err
		}
		p.Steps = append(p.Steps, StepImport, StepMarks)
		if len(obs.FirstBoot) > 0 {
			p.Steps = append(p.Steps, StepFirstBoot)
		}
		var pin map[string]any
		if obs.HostPin != nil {
			// Before the power-on: DRS moves only powered-on VMs.
			p.Steps = append(p.Steps, StepPin)
			pin = obs.HostPin.Want()
		}
		power := "poweredOff"
		if o.PowerOn {
			power = "poweredOn"
			p.Steps = append(p.Steps, StepPowerOn)
			if o.WaitForIP {
				p.Steps = append(p.Steps, StepWaitForIP)
			}
		}
		p.Marks = marks
		p.After = &Summary{Name: o.Name, Host: obs.Host, Datastore: obs.Datastore, Version: obs.Version,
			PowerState: power, FirstBoot: nonNil(obs.FirstBoot), Pin: pin}
		return p, nil
	}

	after := *p.Before
	if cur.Host != obs.Host {
		// checkOurs let it through: its host mark names this host.
		p.Steps = append(p.Steps, StepMoveBack)
		after.Host = obs.Host
	}
	switch {
	case !cur.marked():
		// Imported by an earlier run that was stopped before marking it.
		p.Steps = append(p.Steps, StepMarks)
		p.Marks = marks
	case cur.Marks[vsphere.MarkHost] == "":
		// Deployed before SVMs were marked with their host.
		p.Steps = append(p.Steps, StepMarks)
		p.Marks = map[string]string{vsphere.MarkHost: obs.Host}
	}
	if obs.Pin != nil {
		after.Pin = obs.Pin.Want()
		if !obs.Pin.Pinned() || cur.Host != obs.Host {
			// Moved back, it may need the autostart entry of its own host.
			p.Steps = append(p.Steps, StepPin)
		}
	}
	if o.PowerOn && cur.PowerState != "poweredOn" {
		p.Steps = append(p.Steps, StepPowerOn)
		if o.WaitForIP {
			p.Steps = append(p.Steps, StepWaitForIP)
		}
		after.PowerState = "poweredOn"
	}
	p.After = &after
	return p, nil
}

// checkOurs refuses an existing VM the module must not touch.
func checkOurs(o Options, obs observed, v vmInfo) error {
	if !v.ours() {
		role := v.Marks[vsphere.MarkRole]
		if role == "" {
			role = "not set"
		}
		verb := "overwrite"
		if o.State == StateAbsent {
			verb = "delete"
		}
		return fmt.Errorf("VM %s (%s) exists and is not an SVM marked by %s (custom attribute %s: %s): refusing to %s it; choose another name",
			o.Name, v.Path, vsphere.DeployedBy, vsphere.MarkRole, role, verb)
	}
	if v.Host != obs.Host && (o.State == StateAbsent || v.Marks[vsphere.MarkHost] != obs.Host) {
		return fmt.Errorf("SVM %s exists on host %s, not on %s: refusing to touch it (an SVM is pinned to its host; choose another name or set esxi_hostname to %s)",
			o.Name, v.Host, obs.Host, v.Host)
	}
	want := obs.Version
	if o.State == StateAbsent {
		want = o.Version // optional there
	}
	if want != "" && v.version() != want {
		if o.State == StateAbsent {
			return fmt.Errorf("SVM %s on %s is version %s, not %s as option version says: refusing to delete it", o.Name, v.Host, v.version(), want)
		}
		return fmt.Errorf("SVM %s on %s is version %s, not %s: refusing to overwrite it; remove it first (state: absent) or choose another name",
			o.Name, v.Host, v.version(), want)
	}
	return nil
}

// checkCapacity refuses a new SVM its host or datastore cannot take:
// memory beside what the host's powered-on VMs are given, vCPUs within its
// logical processors, disks within the datastore's free space.
func checkCapacity(o Options, obs observed) error {
	c, n := obs.Capacity, obs.Need
	if c == nil {
		return nil
	}
	var short []string
	if n.MemoryMB > 0 && c.MemoryMB > 0 && n.MemoryMB > c.FreeMemoryMB() {
		short = append(short, fmt.Sprintf("memory: needs %d MB, %d MB free (%d MB of %d MB given to powered-on VMs)",
			n.MemoryMB, max(0, c.FreeMemoryMB()), c.UsedMemoryMB, c.MemoryMB))
	}
	if n.CPUs > 0 && c.CPUs > 0 && n.CPUs > c.CPUs {
		short = append(short, fmt.Sprintf("CPU: needs %d vCPUs, the host has %d logical processors", n.CPUs, c.CPUs))
	}
	if n.DiskBytes > 0 && n.DiskBytes > c.DatastoreFree {
		short = append(short, fmt.Sprintf("datastore %s: needs %s, %s free", c.Datastore, gib(n.DiskBytes), gib(c.DatastoreFree)))
	}
	if len(short) == 0 {
		return nil
	}
	return fmt.Errorf("host %s cannot take SVM %s: %s", c.Host, o.Name, strings.Join(short, "; "))
}

func gib(b int64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }
