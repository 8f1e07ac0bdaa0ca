package runlock

import "github.com/ksvla/lightagent/internal/ansible"

// Doc documents the module.
func (*module) Doc() ansible.Doc {
	return ansible.Doc{
		ShortDescription: "Hold the upgrade lock of a datacenter, so one upgrade runs at a time",
		Description: []string{
			"Takes, refreshes or releases a lock kept in vCenter as the custom attribute C(" + Field + ") of the datacenter, so that every controller (two AWX jobs, two admins) sees the same one.",
			"The lock names each holder (user and controller), the hypervisors it holds (O(hosts)), when it was taken and when it expires; a run on a hypervisor another run holds fails at once naming it, or waits with O(wait=true). Runs on disjoint hypervisors (AWX job slices) hold it side by side.",
			"A lock expires O(ttl) seconds after its last refresh, so a run killed on another controller does not block forever; on the same controller, a later run takes over the lock of a run whose process is gone, with a warning.",
		},
		Notes: []string{
			"Two runs that find the lock free at the same moment both write it; each reads it back after O(settle) seconds and only the last writer goes on, the other fails naming it.",
			"In check mode nothing is written, and a lock another run holds is a warning: a plan may be made while a run goes on.",
			"C(upgrade.yml) takes the lock for its hypervisors before the first change, refreshes it at every batch and releases it at the end.",
		},
		CheckMode: "full",
		DiffMode:  "full",
		Examples: `
- name: One upgrade at a time in this datacenter
  ksvla.lightagent.run_lock:
    datacenter: DC1

- name: Give the lock back
  ksvla.lightagent.run_lock:
    datacenter: DC1
    state: released
`,
		Return: map[string]ansible.ReturnValue{
			"run_id": {Description: []string{"This run's identity in the lock."}, Returned: "always", Type: "str", Sample: "ctl01:4242"},
			"holder": {Description: []string{"The lock as read (after a take: as written): C(run_id), C(owner), C(host), C(pid), C(since), C(expires)."},
				Returned: "when the lock is held", Type: "dict"},
			"msg": {Description: []string{"What was done."}, Returned: "always", Type: "str"},
		},
	}
}
