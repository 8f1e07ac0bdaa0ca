package kscpurge

import "github.com/ksvla/lightagent/internal/ansible"

// Doc documents the module.
func (*module) Doc() ansible.Doc {
	return ansible.Doc{
		ShortDescription: "Delete removed SVMs' records from Kaspersky Security Center",
		Description: []string{
			"Removes the Kaspersky Security Center (KSC) device records of SVMs that no longer exist, right away instead of when the administration group's retention period (C(autoRemovePeriod)) runs out.",
			"Records are selected by display name (O(names)), IP address (O(ips)), the SVMs M(ksvla.lightagent.svm_remove) returned (O(svms)), or by Protection Server version (O(product_version)); O(not_visible_minutes) keeps only records not seen for that long. Every selector resolves to KSC's unique record ids before anything is removed.",
			"Works on KSC 15 and on KSC 15.1 and later, where C(HostGroup.RemoveHosts) ignores C(bForceDestroy) and only moves managed devices to Unassigned devices: there each batch is moved to Unassigned first and then removed. Either way the module searches again afterwards and fails if a record is still listed.",
			"Idempotent: a selector that matches no record is reported in RV(absent) and is not an error; when nothing is left to remove, C(changed) is false.",
			"With vCenter connection options, a selected record whose VM still exists and is powered on is refused: the module fails, naming the VM, before removing anything.",
			"A record is removed only when its SVM is proven gone: named by O(svms) (removed by this run), O(names) or O(ips), or, when selected by O(product_version) or O(not_visible_minutes) alone, matched by no VM in any datacenter of O(served_datacenters). RV(removed) says which proof applied; every other selected record is left, reported in RV(kept) and warned about.",
		},
		Notes: []string{
			"A display name selects every record that has it; KSC names are not unique (re-deployed SVMs). Use O(svms) with C(ksc_id) to remove exactly one record.",
			"O(product_version) reads the Protection Server version from the record's security application version, or from its application list when the server does not report that column.",
			"In check mode the records are selected and checked against vCenter, and RV(removed) lists what would go; nothing is removed.",
		},
		CheckMode: "full",
		DiffMode:  "full",
		Examples: `
- name: Remove the old SVMs from vCenter
  ksvla.lightagent.svm_remove:
    version: 6.1.0.100
  register: removed_svms

- name: Remove their records from KSC right away
  ksvla.lightagent.ksc_purge:
    ksc_url: https://ksc.example.com:13299
    ksc_username: automation
    ksc_password: "{{ ksc_password }}"
    ksc_ca_file: files/klserver.cer
    svms: "{{ removed_svms.removed }}"
  delegate_to: localhost

- name: Remove every record of a Protection Server 6.1 not seen for a day whose VM exists in no site of this KSC
  ksvla.lightagent.ksc_purge:
    product_version: 6.1.0.100
    not_visible_minutes: 1440
    hostname: vcenter.example.com
    username: automation@vsphere.local
    password: "{{ vcenter_password }}"
    served_datacenters: [DC1, DC2]

- name: Remove two records by name
  ksvla.lightagent.ksc_purge:
    names: [svm-esxi-01-6.1, svm-esxi-02-6.1]
`,
		Return: map[string]ansible.ReturnValue{
			"removed": {Description: []string{"The records removed (in check mode: that would be removed), sorted by name.",
				"A run that fails lists only the records KSC no longer lists: those of a batch cut by the failure are left out, even if KSC removed some of them."},
				Returned: "always", Type: "list", Sample: []any{map[string]any{"name": "svm-esxi-01-6.1", "id": "8910f900-3807-4b97-8a97-d49e73ec5ab1", "ip": "10.0.0.21", "auto_remove_at": "2026-05-01T10:00:00Z"}},
				Contains: map[string]ansible.ReturnValue{
					"name":           {Description: []string{"The display name (or FQDN, or id, when it has none)."}, Returned: "always", Type: "str"},
					"id":             {Description: []string{"The record's unique id (C(KLHST_WKS_HOSTNAME))."}, Returned: "always", Type: "str"},
					"ip":             {Description: []string{"The record's IPv4 address, empty when unknown."}, Returned: "always", Type: "str"},
					"auto_remove_at": {Description: []string{"When the group's C(autoRemovePeriod) would have removed the record anyway."}, Returned: "with O(report_retention) and a non-zero period", Type: "str"},
					"proof":          {Description: []string{"Why the record's SVM is known to be gone: the selector that named it, or the datacenters searched for its VM."}, Returned: "always", Type: "str"},
				}},
			"kept": {Description: []string{"Records selected by O(product_version) or O(not_visible_minutes) alone whose SVM is not proven gone, left in KSC: C(name), C(id), C(reason) (the VM found, or what is missing to prove it gone)."},
				Returned: "success", Type: "list",
				Sample: []any{map[string]any{"name": "svm-dc2-6.1", "id": "2f0e1c2a-5b1d-4a57-9d7e-0c1e6c3a9b11", "reason": "VM svm-dc2-6.1 exists in datacenter DC2 (on esxi-21.example.com, poweredOn)"}}},
			"absent": {Description: []string{"Selectors that matched no record (already removed): dicts with C(name), C(ip) or C(ksc_id) as given."},
				Returned: "success", Type: "list", Sample: []any{map[string]any{"name": "svm-esxi-02-6.1"}}},
			"skipped": {Description: []string{"Records selected by O(names), O(ips) or O(svms) that O(product_version) or O(not_visible_minutes) keep: C(name), C(id), C(reason)."},
				Returned: "success", Type: "list"},
			"refused": {Description: []string{"Records whose VM still runs in vCenter: C(name), C(id), C(reason). Any refused record fails the module before removal."},
				Returned: "when the records were selected", Type: "list"},
			"retention": {Description: []string{"Per administration group of the selected records: C(group), C(group_id), C(auto_remove_period_days) (0 = never), C(inherited), C(records) and C(next_auto_removal), the earliest time the period would have removed one of them."},
				Returned: "with O(report_retention)", Type: "list",
				Sample: []any{map[string]any{"group": "SVMs", "group_id": 10, "auto_remove_period_days": 60, "inherited": true, "records": 2, "next_auto_removal": "2026-05-01T10:00:00Z"}}},
			"msg": {Description: []string{"A one-line summary."}, Returned: "always", Type: "str", Sample: "removed 2 KSC records"},
		},
	}
}
