package agentfacts

import "github.com/ksvla/lightagent/internal/ansible"

// Doc documents the module.
func (*module) Doc() ansible.Doc {
	return ansible.Doc{
		ShortDescription: "Facts about KSVLA SVMs and Light Agents, per hypervisor",
		Description: []string{
			"Reads every VM in scope from vCenter in one property-collector pass and the SVMs and Light Agents from Kaspersky Security Center (KSC), joins them, and returns the fleet as C(ansible_facts.ksvla) and each Light Agent in the result's C(agents) (a plain result, not a fact: on thousands of VMs it is most of the output, and facts are copied into every later task's variables and AWX's fact cache).",
			"An SVM is recognised by the marks M(ksvla.lightagent.svm_deploy) puts on it, by the Protection Server product KSC lists on it, or, for VMs matching O(svm_name_pattern), by a klconfig C(version) probe when O(probe=true). A name alone never makes a VM an SVM.",
			"VMs are matched to KSC hosts by name, DNS name, FQDN and IP; a VM that matches several KSC hosts is reported in C(ambiguous_matches) and a warning, never guessed.",
			"For each SVM it reports whether KSC shows it activated and its databases date (C(activated), C(databases_date), C(prepared): both).",
			"For each hypervisor it computes the SVMs by version, the Light Agents by version, the agents still pending (not served by O(target_version) per O(compatibility)), the unprotected VMs (no compatible, activated, powered-on SVM on their host), whether a target SVM runs and is prepared, whether the host is ready (a prepared target SVM running, no agent pending, and, while it carries an old SVM, no agent pending elsewhere in its DRS cluster that DRS may move onto it and that keeps its old SVM: C(arrivals_keeping_old_svm)) and which old SVMs may be removed.",
			"Read-only: C(changed) is always false, and it runs the same in check mode.",
		},
		Notes: []string{
			"Which Light Agent an SVM serves is O(compatibility), a table, not arithmetic: KSVLA 6.x Light Agents are Kaspersky Endpoint Security for Windows and for Linux 12.x in Light Agent mode, with versions of their own. An agent connects to an SVM on its hypervisor that is powered on, activated and whose version the table pairs with the agent's product and version.",
			"Activation is read from KSC's host status: an SVM counts as activated when its status mask (C(KLHST_WKS_STATUS_MASK)) is reported without the 'licence expired' condition (bit 9). The vendor documents no per-host activation attribute; this is an assumption to check on your KSC. The databases date is C(KLHST_WKS_RTP_AV_BASES_TIME).",
			"Light Agent and Protection Server versions are read from KSC's security application version (C(KLHST_WKS_RTP_AV_VERSION)) of hosts carrying the product, in pages; a host without it is asked with C(GetHostProducts).",
		},
		CheckMode: "full",
		DiffMode:  "none",
		Examples: `
- name: Read the fleet
  ksvla.lightagent.agent_facts:
    hostname: vcenter.example.com
    username: automation@vsphere.local
    password: "{{ vcenter_password }}"
    ksc_url: https://ksc.example.com:13299
    ksc_username: automation
    ksc_password: "{{ ksc_password }}"
    ksc_ca_file: files/klserver.cer
    datacenter: DC1
    cluster: Cluster1
    target_version: 6.2.0.200
    la_products: [KES, kesl]
    compatibility:
      "6.1": {kesl: ["12.1"], KES: ["12.5"]}
      "6.2": {kesl: ["12.2"], KES: ["12.6"]}
  delegate_to: localhost

- name: Wait until every Light Agent on esxi-01 runs the new version
  ksvla.lightagent.agent_facts:
    target_version: 6.2.0.200
    esxi_hostnames: [esxi-01.example.com]
  register: facts
  until: facts.ansible_facts.ksvla.summary.agents_pending == 0
  retries: 60
  delay: 30

- name: Wait for this hypervisor's agents, one read per interval for all hosts polling
  ksvla.lightagent.agent_facts:
    target_version: 6.2.0.200
    esxi_hostnames: ["{{ inventory_hostname }}"]
    cache:
      path: /tmp/ksvla-facts.json
      max_age: 30
  register: facts
  until: (facts.ansible_facts.ksvla.hypervisors | first).ready
  retries: 240
  delay: 30

- name: Stop if any VM is unprotected
  ansible.builtin.assert:
    that: ansible_facts.ksvla.summary.unprotected == 0
`,
		Return: map[string]ansible.ReturnValue{
			"ansible_facts": {Description: []string{"The fleet under the key C(ksvla)."}, Returned: "success", Type: "dict",
				Contains: map[string]ansible.ReturnValue{
					"ksvla": {Description: []string{"C(target_version), C(compatibility) (the table used), C(svms) (each with C(activated), C(databases_date) and C(prepared) as KSC shows them, C(home_host) from its host mark, C(on_home_host), C(powered_on), C(pinned) and C(pin_missing): DRS override, HA override, autostart), C(hypervisors) (each with its Light Agents by version, the names still pending, C(target_svm_prepared), C(agents_may_arrive) (agents not updated yet on other hosts of its DRS cluster that fully automated DRS may move onto it), C(arrivals_keeping_old_svm) (those of them its old SVM stays for: all with O(agent_selection=hypervisor); with V(standard) or V(cluster) only while its old SVM is the anchor, the one old SVM of the cluster kept for them) and C(problems): SVM moved, off or unpinned), C(summary) (with C(problems)), C(ready_to_remove) (old version -> every host ready), C(unrecognised_candidates), C(ambiguous_matches), C(unmatched_ksc_hosts), C(unknown_vms) (VMs on the hypervisors that are neither SVMs nor Light Agents KSC lists with their version: they block SVM removals there).",
						"With O(esxi_hostnames) or O(cluster) only those hosts' SVMs and agents are returned; C(summary.agents_outside_scope) counts the agents left out."},
						Returned: "success", Type: "dict",
						Sample: map[string]any{"summary": map[string]any{"hosts": 4, "hosts_ready": 1, "agents_pending": 9, "unprotected": 0}}},
				}},
			"agents": {Description: []string{"Every Light Agent in scope: C(name), C(host), C(ip), C(ksc_id), C(product) (KSC product key), C(os), C(version), C(svm_versions) (the Protection Server versions O(compatibility) pairs with it), C(updated) (served by the target version), C(protected) and C(served_by) (the compatible, activated, powered-on SVMs on its host), C(cluster) and C(drs_movable) (fully automated DRS may move its VM to another host of the cluster: no DRS VM override disables it).",
				"An agent KSC lists but no VM in scope matches has C(unplaced=true) and C(protected=null): its host, so its protection, is unknown (counted in C(summary.agents_unplaced), not in C(summary.unprotected))."},
				Returned: "success", Type: "list",
				Sample: []any{map[string]any{"name": "vm-esxi-01-001", "host": "esxi-01.example.com", "ip": "10.20.1.11", "product": "kesl",
					"os": "Ubuntu 22.04 LTS", "version": "12.1.0.1297", "svm_versions": []any{"6.1"},
					"updated": false, "protected": true, "served_by": []any{"svm-esxi-01-6.1"}}}},
			"cache": {Description: []string{"With O(cache): C(hit) (the facts come from the file, nothing was read) and C(age) (seconds since that read)."},
				Returned: "when O(cache) is set", Type: "dict", Sample: map[string]any{"hit": true, "age": 3.2}},
			"round_trips": {Description: []string{"vCenter SOAP calls made, for sizing."}, Returned: "success", Type: "dict"},
			"msg":         {Description: []string{"A one-line summary."}, Returned: "always", Type: "str"},
		},
	}
}
