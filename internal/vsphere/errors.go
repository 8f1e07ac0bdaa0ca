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
	// Candidates are up to 10 names of that kind that do exist there, More how many others.
	Candidates []string
	More       int
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("%s %q not found", e.Kind, e.Name)
	if e.In != "" {
		msg += " in " + e.In
	}
	if len(e.Candidates) > 0 {
		msg += fmt.Sprintf("; %ss there: %s", e.Kind, strings.Join(e.Candidates, ", "))
		if e.More > 0 {
			msg += fmt.Sprintf(" (and %d more)", e.More)
		}
	}
	return msg
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
