package svmremove

import "github.com/ksvla/lightagent/internal/ansible"

// Doc documents the module.
func (*module) Doc() ansible.Doc {
	gates := map[string]ansible.ReturnValue{
		"name":    {Description: []string{"C(no_agent_needs_it), C(replacement_running), C(replacement_prepared) or C(not_last_svm)."}, Returned: "always", Type: "str"},
		"passed":  {Description: []string{"Whether the gate passed."}, Returned: "always", Type: "bool"},
		"skipped": {Description: []string{"The gate was skipped by O(force=true) (C(no_agent_needs_it) and C(no_unknown_vm) only)."}, Returned: "when skipped", Type: "bool"},
		"reason":  {Description: []string{"Why the gate passed or blocks."}, Returned: "always", Type: "str"},
	}
	return ansible.Doc{
		ShortDescription: "Power off and delete SVMs of a previous Protection Server version",
		Description: []string{
			"Step 5 of the upgrade: once the Light Agents run the new version, shuts down and deletes the old SVMs from the hypervisors.",
			"Only VMs positively recognised as SVMs are touched: by the marks M(ksvla.lightagent.svm_deploy) writes, or by the Protection Server product KSC lists on them. A selected VM that is not a recognised SVM (a protected VM, an unrecognised candidate matching O(svm_name_pattern)) fails the run before any change, naming it.",
			"Five safety gates are checked for each selected SVM: no Light Agent on its hypervisor still needs it (C(no_agent_needs_it): an agent the SVM serves per O(compatibility), or one in no row of the table, that no other activated SVM there serves; an SVM whose version has no row blocks while agents run there), a powered-on SVM of O(target_version) runs on the same hypervisor (C(replacement_running)), KSC shows that SVM activated and with databases (C(replacement_prepared), naming it when not), it is not the last SVM there (C(not_last_svm)), and every VM vCenter shows on the hypervisor is an SVM, a Light Agent KSC lists with its version, or named in O(not_protected_vms) (C(no_unknown_vm)): a VM KSC no longer knows may still need the SVM.",
			"C(no_agent_needs_it) also counts the Light Agents not updated on other hosts of the SVM's DRS cluster that fully automated DRS may move onto its hypervisor. With O(agent_selection=hypervisor) (the default) each of them keeps the SVM; with V(standard) or V(cluster) they keep one old SVM of the cluster, the anchor, which the gate's reason names, and the others may go.",
			"The same gates, with the same refusal message, guard M(ksvla.lightagent.svm_deploy) with O(ksvla.lightagent.svm_deploy#module:state=absent).",
			"Nothing half-done: the gates of every selected SVM are checked first, as if they were removed one after the other, so of two old SVMs on one hypervisor of which only one may go the second is blocked. If any SVM is blocked, the run fails listing every blocked SVM with its reasons and nothing is removed, not even the SVMs on hypervisors that are ready.",
			"Right before each removal the fleet is observed again and the gates re-checked; an SVM that no longer passes stops the run and the SVMs after it are not touched.",
			"Removal asks the guest OS to shut down through VMware Tools, waits O(shutdown_timeout) seconds, powers the VM off hard if it still runs, then deletes it with its files.",
			"A selected name that no VM in scope carries is already absent (C(changed=false)); a name carried only by VMs outside O(cluster)/O(esxi_hostnames) fails instead.",
		},
		Notes: []string{
			"The KSC records of removed SVMs stay until the group's retention period; pass C(removed) to M(ksvla.lightagent.ksc_purge) to delete them.",
			"Without KSC options the Light Agents are unknown, so the module fails unless O(force=true).",
			"Check mode lists what would be removed with the reason each gate passed; diff mode shows the selected SVMs present before and those remaining after.",
		},
		CheckMode: "full",
		DiffMode:  "full",
		Examples: `
# The connections come from the environment, as an AWX credential sets it: VMWARE_HOST,
# VMWARE_USER, VMWARE_PASSWORD_FILE, KSC_URL, KSC_USERNAME, KSC_PASSWORD_FILE, KSC_CA_FILE.
- name: Remove the old SVMs once every Light Agent is updated
  ksvla.lightagent.svm_remove:
    datacenter: DC1
    version: 6.1.0.100
    target_version: 6.2.0.200
  register: removal
  delegate_to: localhost

- name: Delete their records from KSC
  ksvla.lightagent.ksc_purge:
    svms: "{{ removal.removed }}"

- name: Remove one SVM by name, in check mode first
  ksvla.lightagent.svm_remove:
    name: svm-esxi-01-6.1
    target_version: 6.2.0.200
  check_mode: true
  register: preview

- name: Remove SVMs although some Light Agents still point at them (the other gates still apply)
  ksvla.lightagent.svm_remove:
    names: [svm-esxi-02-6.1, svm-esxi-03-6.1]
    target_version: 6.2.0.200
    force: true
`,
		Return: map[string]ansible.ReturnValue{
			"removed": {Description: []string{"The SVMs removed, or in check mode those that would be (with C(would_remove=true)), in removal order.",
				"Carries the KSC identity, so M(ksvla.lightagent.ksc_purge) can take it as is."},
				Returned: "always", Type: "list", Contains: map[string]ansible.ReturnValue{
					"name":         {Description: []string{"VM name."}, Returned: "always", Type: "str"},
					"moid":         {Description: []string{"vCenter managed object id."}, Returned: "always", Type: "str"},
					"host":         {Description: []string{"ESXi host it ran on."}, Returned: "always", Type: "str"},
					"version":      {Description: []string{"Protection Server version."}, Returned: "always", Type: "str"},
					"ip":           {Description: []string{"Guest IP address."}, Returned: "when known", Type: "str"},
					"fqdn":         {Description: []string{"FQDN of its KSC host record."}, Returned: "when known to KSC", Type: "str"},
					"ksc_id":       {Description: []string{"KSC host id (KLHST_WKS_HOSTNAME)."}, Returned: "when known to KSC", Type: "str"},
					"ksc_name":     {Description: []string{"KSC display name."}, Returned: "when known to KSC", Type: "str"},
					"gates":        {Description: []string{"Every gate with the reason it passed."}, Returned: "always", Type: "list", Contains: gates},
					"would_remove": {Description: []string{"True in check mode."}, Returned: "check mode", Type: "bool"},
				}, Sample: []any{map[string]any{"name": "svm-esxi-01-6.1", "host": "esxi-01.lab.local", "version": "6.1.0.100", "ksc_id": "8f2c..."}}},
			"absent": {Description: []string{"Selected names no VM in scope carries (already removed)."}, Returned: "always", Type: "list", Sample: []any{"svm-esxi-01-6.1"}},
			"blocked": {Description: []string{"Selected SVMs a gate keeps, with the reasons; when not empty the module failed and removed nothing (or, at removal time, stopped there)."},
				Returned: "always", Type: "list", Contains: map[string]ansible.ReturnValue{
					"name":    {Description: []string{"VM name."}, Returned: "always", Type: "str"},
					"host":    {Description: []string{"ESXi host."}, Returned: "always", Type: "str"},
					"version": {Description: []string{"Protection Server version."}, Returned: "always", Type: "str"},
					"reason":  {Description: []string{"The blocking gates and their reasons."}, Returned: "always", Type: "str"},
					"gates":   {Description: []string{"Every gate."}, Returned: "always", Type: "list", Contains: gates},
				}},
			"msg": {Description: []string{"A one-line summary, or what blocked."}, Returned: "always", Type: "str"},
		},
	}
}
