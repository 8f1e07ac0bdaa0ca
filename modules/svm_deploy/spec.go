package svmdeploy

import (
	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/modules/conn"
)

// States the module brings an SVM to.
const (
	StatePresent = "present"
	StateAbsent  = "absent"
)

// Options are svm_deploy's decoded options.
type Options struct {
	conn.VCenterOptions
	conn.KSCOptions
	ansible.Deadline
	Force            bool           `json:"force"`
	NotProtected     []string       `json:"not_protected_vms"`
	PSProducts       []string       `json:"ps_products"`
	LAProducts       []string       `json:"la_products"`
	Compatibility    map[string]any `json:"compatibility"` // the gates' table (fleetopts' option)
	Datacenter       string         `json:"datacenter"`
	ESXiHostname     string         `json:"esxi_hostname"`
	Datastore        string         `json:"datastore"`
	Folder           string         `json:"folder"`
	ResourcePool     string         `json:"resource_pool"`
	Name             string         `json:"name"`
	Image            string         `json:"image"`
	Networks         map[string]any `json:"networks"`
	CPUs             int            `json:"cpus"`
	MemoryMB         int            `json:"memory_mb"`
	DiskProvisioning string         `json:"disk_provisioning"`
	FirstBoot        []string       `json:"first_boot"`
	Version          string         `json:"version"`
	PowerOn          bool           `json:"power_on"`
	WaitForIP        bool           `json:"wait_for_ip"`
	WaitTimeout      int            `json:"wait_timeout"`
	ImageSHA256      string         `json:"image_sha256"`
	ImageTrusted     bool           `json:"image_trusted"`
	State            string         `json:"state"`
}

// gateSpec is the KSC connection and the gate options of state=absent.
func gateSpec() ansible.Spec {
	return conn.KSCSpec().Merge(ansible.Spec{Options: gateOptions()})
}

// MaxFirstBoot bounds first_boot: the vendor's first startup script is for
// a minimal set of commands, and each line becomes an extraConfig entry.
const MaxFirstBoot = 32

func spec() ansible.Spec {
	return conn.VCenterSpec().Merge(gateSpec()).Merge(ansible.Spec{
		Options: []ansible.Option{
			{Name: "datacenter", Type: ansible.TypeStr,
				Description: []string{"The datacenter (name, inventory path or MoRef) that holds O(esxi_hostname).",
					"May be omitted when vCenter has exactly one datacenter."}},
			{Name: "esxi_hostname", Type: ansible.TypeStr, Required: true,
				Description: []string{"The ESXi host the SVM is deployed on and pinned to (name, inventory path or MoRef).",
					"An SVM protects the VMs of its own hypervisor: deploy one per host."}},
			{Name: "datastore", Type: ansible.TypeStr,
				Description: []string{"The datastore that receives the SVM's files; usually the host's local datastore. Required with O(state=present)."}},
			{Name: "folder", Type: ansible.TypeStr,
				Description: []string{"The VM folder for the SVM (inventory path such as V(/DC1/vm/SVMs), path relative to the datacenter's vm folder, or name).",
					"Default: the datacenter's vm folder."}},
			{Name: "resource_pool", Type: ansible.TypeStr,
				Description: []string{"The resource pool for the SVM. Default: the root pool of the host's cluster (or of the standalone host)."}},
			{Name: "name", Type: ansible.TypeStr, Required: true, Check: ansible.CheckVMName,
				Description: []string{"The SVM's VM name. It must be unique in the datacenter: the module never creates a second VM of the same name.",
					"vCenter's rules apply: at most 80 characters, not blank, no leading or trailing space, no control or invisible (bidirectional) characters.",
					"C(<), C(>), C(&) and C(\") are refused too: vCenter stores them escaped, so the name would not read back as given."}},
			{Name: "image", Type: ansible.TypeStr, Aliases: []string{"ova", "ovf"}, URLCredentials: true,
				Description: []string{"The SVM image: a local C(.ova) or C(.ovf) path on the controller, or an V(http://) / V(https://) URL (the server must support Range requests).",
					"A local path must name a regular file; files an C(.ovf) references are opened inside its directory, and a link that leads out of it is refused.",
					"Credentials in a URL (V(https://user:password@host/svm.ova)) are masked like a no_log option wherever the URL appears, and never quoted in errors.",
					"It is streamed to vCenter, never downloaded or unpacked to a temporary file. When the image has a manifest (C(.mf)), every file is verified against it while it streams.",
					"Required with O(state=present)."}},
			{Name: "image_sha256", Type: ansible.TypeStr,
				Description: []string{"The expected SHA-256 of the O(image) file (the C(.ova), or the C(.ovf) itself), as the vendor publishes it; an optional V(sha256:) prefix is accepted.",
					"The file is read once and compared before vCenter is asked anything; a mismatch changes nothing.",
					"An image is verified by this checksum or by its manifest (C(.mf)); one with neither is refused unless O(image_trusted=true).",
					"For an C(.ovf) it covers the descriptor only, so its disks still need the manifest."}},
			{Name: "image_trusted", Type: ansible.TypeBool, Default: false,
				Description: []string{"Deploy an image that neither O(image_sha256) nor a manifest verifies. A warning says so on every run that uses such an image."}},
			{Name: "networks", Type: ansible.TypeDict,
				Description: []string{"Maps the image's OVF network names to vSphere networks, e.g. V({\"VM Network\": \"SVM-PG\"}).",
					"A name the image does not have is an error (a typo would otherwise leave the NIC on the default network). Networks left out get vSphere's default."}},
			{Name: "cpus", Type: ansible.TypeInt, Range: ansible.Between(0, 768),
				Description: []string{"The number of virtual CPUs. Default: as the image says."}},
			{Name: "memory_mb", Type: ansible.TypeInt, Range: ansible.Between(0, 24<<20),
				Description: []string{"The memory size in MB. Default: as the image says."}},
			{Name: "disk_provisioning", Type: ansible.TypeStr, Default: "thin", Choices: []any{"thin", "thick", "eagerZeroedThick"},
				Description: []string{"How the SVM's disks are provisioned on O(datastore)."}},
			{Name: "first_boot", Type: ansible.TypeList, Elements: ansible.TypeStr, MaxItems: MaxFirstBoot,
				Description: []string{"klconfig command lines the SVM runs once at its first boot (the vendor's first startup script), in order, e.g. V(network eth0 192.0.2.45 255.255.255.0 192.0.2.255 192.0.2.1).",
					"They are written as C(guestinfo.klfirstboot.cmd1) .. C(cmdN) into the VM's configuration when it is created, before the first power-on. The pseudo-commands V(ALWAYS), V(RESET) and V(REPORT) are passed as they are.",
					"Arguments are checked as the klconfig client checks them: no quotes, C(;), shell characters or line breaks; known commands as the SVM takes them.",
					"At most 32 lines: the vendor means the script for a minimal set of commands.",
					"C(passwd) is refused: it reads the new password from standard input, which halts the SVM's boot (vendor). Set passwords with M(ksvla.lightagent.svm_klconfig) after deployment.",
					"Only applied when the SVM is created; an existing SVM is not changed (a warning says so when its commands differ)."}},
			{Name: "version", Type: ansible.TypeStr,
				Description: []string{"The Protection Server version the SVM must carry, e.g. V(6.2.0.200).",
					"With O(state=present) it defaults to the version in the image's ProductSection; when both are known and differ, the module fails naming both.",
					"An existing SVM of this name with another version is never overwritten: the module fails.",
					"With O(state=absent), when given, the SVM is removed only if it is marked with this version."}},
			{Name: "power_on", Type: ansible.TypeBool, Default: true,
				Description: []string{"Power the SVM on after deployment (and power on an existing, powered-off SVM, which is a change)."}},
			{Name: "wait_for_ip", Type: ansible.TypeBool, Default: true,
				Description: []string{"After powering on, wait until the guest reports an IP address (VMware Tools must run in the SVM). Ignored with O(power_on=false)."}},
			{Name: "wait_timeout", Type: ansible.TypeInt, Default: 600, Range: ansible.SecondsRange,
				Description: []string{"Seconds to wait for the IP address with O(wait_for_ip=true)."}},
			timeoutOption(),
			{Name: "state", Type: ansible.TypeStr, Default: StatePresent, Choices: []any{StatePresent, StateAbsent},
				Description: []string{"V(present) deploys the SVM unless it exists; V(absent) powers it off and deletes it, but only a VM marked as an SVM,",
					"and only when M(ksvla.lightagent.svm_remove)'s safety gates pass, read right before the deletion (no Light Agent needs it, it is not the last SVM on its host, no VM there unknown to KSC): the KSC options are then required unless O(force=true)."}},
		},
		RequiredIf: []ansible.RequiredIf{{Key: "state", Value: StatePresent, Requirements: []string{"image", "datastore"}}},
	})
}

// timeoutOption is the runtime's timeout, described with what running out
// means for an upload.
func timeoutOption() ansible.Option {
	o := ansible.TimeoutOption(3600)
	o.Description = []string{"Seconds the whole module may take, upload included. When it runs out the import is aborted and the half-created VM deleted;",
		"if the module is killed instead, the next run finds the half-created VM and deletes it before deploying again."}
	return o
}
