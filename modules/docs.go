package modules

import "github.com/ksvla/lightagent/internal/ansible"

// Author is the author line of every module's docs.
const Author = "ksvla.lightagent developers"

// VersionAdded is the collection version that first shipped the modules.
const VersionAdded = "0.1.0"

// Sidecar renders one module's library/<name>.yml.
func Sidecar(e ansible.Entry) ([]byte, error) {
	return ansible.Sidecar(e.Name, e.New(), ansible.DocInfo{Collection: Collection, VersionAdded: VersionAdded, Author: Author})
}
