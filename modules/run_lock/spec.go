package runlock

import (
	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/modules/conn"
)

// States of the lock.
const (
	StateAcquired = "acquired"
	StateReleased = "released"
)

// Options are run_lock's decoded options.
type Options struct {
	conn.VCenterOptions
	ansible.Deadline
	Datacenter  string   `json:"datacenter"`
	Hosts       []string `json:"hosts"`
	State       string   `json:"state"`
	RunID       string   `json:"run_id"`
	TTL         int      `json:"ttl"`
	Wait        bool     `json:"wait"`
	WaitTimeout int      `json:"wait_timeout"`
	Settle      int      `json:"settle"`
}

func spec() ansible.Spec {
	return conn.VCenterSpec().Merge(ansible.Spec{Options: []ansible.Option{
		{Name: "datacenter", Type: ansible.TypeStr, Required: true,
			Description: []string{"The datacenter whose custom attribute C(" + Field + ") holds the lock: every controller that upgrades it sees the same one."}},
		{Name: "hosts", Type: ansible.TypeList, Elements: ansible.TypeStr,
			Description: []string{"The hypervisors this run works on: another run is refused only when its hosts overlap these (AWX job slices on disjoint hosts run side by side).",
				"Empty: the whole datacenter, which overlaps every run."}},
		{Name: "state", Type: ansible.TypeStr, Default: StateAcquired, Choices: []any{StateAcquired, StateReleased},
			Description: []string{"V(acquired) takes the lock, or refreshes its expiry when this run holds it already; V(released) gives it back (only the holder's own)."}},
		{Name: "run_id", Type: ansible.TypeStr,
			Description: []string{"What identifies this run across its tasks. Default: the controller's host name and the process id of the C(ansible-playbook) (or C(ansible)) process running the module,",
				"which also lets a later run on the same controller take over the lock of a run that was killed."}},
		{Name: "ttl", Type: ansible.TypeInt, Default: 3600, Range: ansible.SecondsRange,
			Description: []string{"Seconds the lock lasts from its last refresh: a run killed on another controller blocks others at most this long."}},
		{Name: "wait", Type: ansible.TypeBool, Default: false,
			Description: []string{"When another run holds the lock: wait until it is free (up to O(wait_timeout)) instead of failing at once."}},
		ansible.WaitTimeoutOption(3600, "another run to release the lock, with O(wait=true)"),
		{Name: "settle", Type: ansible.TypeInt, Default: 2, Range: ansible.WaitRange,
			Description: []string{"Seconds between writing the lock and reading it back: two runs that found it free at the same moment both write, and only the last writer holds it when they read it back.",
				"Must exceed the time between a run's read and its write (milliseconds)."}},
		ansible.TimeoutOption(7200),
	}})
}
