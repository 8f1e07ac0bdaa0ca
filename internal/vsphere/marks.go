package vsphere

// Custom attribute names that mark a VM as an SVM deployed by this
// collection. The lab seeds old SVMs with the same marks, and every module
// recognises SVMs by them first (never guess: a VM that is not positively recognised is never deleted).
const (
	MarkRole        = "ksvla.role"         // value RoleSVM
	MarkVersion     = "ksvla.version"      // Protection Server version, e.g. 6.2.0.200
	MarkImageSHA256 = "ksvla.image_sha256" // checksum of the OVA/OVF it came from
	MarkDeployedBy  = "ksvla.deployed_by"  // value DeployedBy

	RoleSVM    = "svm"
	DeployedBy = "ksvla.lightagent"
)

// Marks is the set of custom attribute names svm_deploy writes, in the
// order they are written.
var Marks = []string{MarkRole, MarkVersion, MarkImageSHA256, MarkDeployedBy}
