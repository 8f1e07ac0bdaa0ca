package vsphere

// Custom attribute names that mark a VM as an SVM deployed by this
// collection. The lab seeds old SVMs with the same marks, and every module
// recognises SVMs by them first (never guess: a VM that is not positively recognised is never deleted).
const (
	MarkRole        = "ksvla.role"         // value RoleSVM
	MarkVersion     = "ksvla.version"      // Protection Server version, e.g. 6.2.0.200
	MarkImageSHA256 = "ksvla.image_sha256" // checksum of the OVA/OVF it came from
	MarkDeployedBy  = "ksvla.deployed_by"  // value DeployedBy
	// MarkHost names the ESXi host the SVM serves: where it was deployed
	// and must stay (an SVM protects only the VMs of its own host).
	MarkHost = "ksvla.host"

	RoleSVM    = "svm"
	DeployedBy = "ksvla.lightagent"
)

// Marks is the set of custom attribute names svm_deploy writes, in the
// order they are written.
var Marks = []string{MarkRole, MarkVersion, MarkImageSHA256, MarkDeployedBy, MarkHost}

// Records that live with the SVM rather than on one controller: every
// controller (a fresh AWX container too) reads them from vCenter.
const (
	// MarkFirstContact is set to FirstContactPending by svm_deploy on a VM
	// it has just created, and cleared by svm_klconfig once it trusted and
	// recorded the SVM's host key. Only a VM carrying it may have its host
	// key trusted on first use.
	MarkFirstContact    = "ksvla.first_contact"
	FirstContactPending = "pending"
	// MarkHostKey holds the SVM's SSH host key (an authorized_keys line),
	// recorded at first contact and checked strictly from then on.
	MarkHostKey = "ksvla.host_key"
	// MarkKlconfig holds svm_klconfig's record of what it applied and
	// klconfig cannot read back: digests only, never a secret.
	MarkKlconfig = "ksvla.klconfig"
)
