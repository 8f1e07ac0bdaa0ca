package vsphere

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/vim25/types"
)

// ErrNotFound is matched (errors.Is) by every "object not found" error of
// this package, including a VM that vanished before Destroy.
var ErrNotFound = errors.New("not found")

// NotFoundError says which object was looked for and found nowhere.
type NotFoundError struct {
	Kind string // "host", "datastore", "vm", ...
	Name string // the name, path or MoRef asked for
	In   string // optional scope, e.g. the datacenter
}

func (e *NotFoundError) Error() string {
	if e.In != "" {
		return fmt.Sprintf("%s %q not found in %s", e.Kind, e.Name, e.In)
	}
	return fmt.Sprintf("%s %q not found", e.Kind, e.Name)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// AmbiguousError says that a name matched several objects; Matches holds
// their inventory paths so the user can pick one.
type AmbiguousError struct {
	Kind    string
	Name    string
	Matches []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%d %ss match %q: %s (unique inventory path required)",
		len(e.Matches), e.Kind, e.Name, strings.Join(e.Matches, ", "))
}

// isGone reports whether a vSphere call failed because its object no
// longer exists.
func isGone(err error) bool {
	return fault.Is(err, &types.ManagedObjectNotFound{})
}
