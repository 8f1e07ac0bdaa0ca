package svmklconfig

import "github.com/ksvla/lightagent/internal/ansible"

// Doc implements ansible.Phases.
func (*module) Doc() ansible.Doc {
	return ansible.Doc{
		ShortDescription: "Bring an SVM's settings to the desired state through the klconfig API",
		Description: []string{
			"Configures a Kaspersky Security for Virtualization Light Agent SVM over SSH as the C(klconfig) account, one klconfig command per session: network, DNS, time zone, connector language, Administration Server connection, passwords, SSH key, and raw commands.",
			"Settings klconfig can read back (DNS servers, search list) are read first and written only when they differ.",
			"Settings it cannot read back are compared with a record of what this module applied: kept on the SVM's VM in vCenter with O(vm), where every controller finds it, otherwise on the controller under O(record_path).",
			"With O(vm), a freshly deployed SVM's first contact is handled: its host key is trusted once, only for the VM M(ksvla.lightagent.svm_deploy) has just created and at the address vCenter reports, then recorded on the VM and checked strictly; the image's password (O(image_password)) is replaced by the operator's.",
			"Only what differs is applied, in the vendor's order: C(dns) before C(dnssearch), the address change last.",
		},
		Notes: []string{
			"The record under O(record_path) holds one JSON file per SVM, named after its address, port and host key fingerprint, so a redeployed SVM behind the same address starts afresh. Deleting a file makes the next run apply that SVM's unreadable settings again; this is safe because the klconfig commands are idempotent in effect.",
			"Passwords travel on the SSH session's standard input only, never as an argument; the record keeps a salted, stretched digest, written only after C(passwd) succeeded. Results and diffs show them as V((set)) or V((changed)).",
			"After O(network) moves the SVM, later tasks must target the address returned in RV(host).",
			"Check mode runs only read commands (C(apiversion), C(dnsshow), C(version), C(test), and O(commands) declared read-only) and reports what would change; with O(host_key_checking=accept_new) it records no key.",
			"The argument format of C(setsshkey) is not documented by the vendor; the module sends C(setsshkey <type> <base64>).",
		},
		Requirements: []string{"SSH access to the SVM as the klconfig account"},
		CheckMode:    "full",
		DiffMode:     "full",
		Examples: `- name: First contact with the SVM svm_deploy has just created, then its settings
  ksvla.lightagent.svm_klconfig:
    vm: svm-esxi-01-6.2
    datacenter: DC1
    vcenter:
      hostname: vcenter.example.com
      username: automation@vsphere.local
      password: "{{ vcenter_password }}"
    image_password: "{{ svm_image_klconfig_password }}"
    password: "{{ svm_klconfig_password }}"
    ksc:
      address: ksc.example.com

- name: Configure an SVM by address
  ksvla.lightagent.svm_klconfig:
    host: 192.0.2.17
    password: "{{ svm_initial_password }}"
    known_hosts: /etc/ksvla/known_hosts
    network:
      mode: static
      address: 192.0.2.45
      netmask: 255.255.255.0
      broadcast: 192.0.2.255
      gateway: 192.0.2.1
    dns_servers: [192.0.2.53, 198.51.100.7]
    dns_search: [example.com]
    timezone: Europe/Berlin
    connector_language: en
    ksc:
      address: ksc.example.com
    passwords:
      klconfig: "{{ svm_klconfig_password }}"
      root: "{{ svm_root_password }}"
    services: [klnagent]
  register: svm

- name: Check the Protection Server version where the SVM answers now
  ksvla.lightagent.svm_klconfig:
    host: "{{ svm.host }}"
    password: "{{ svm_klconfig_password }}"
    known_hosts: /etc/ksvla/known_hosts
    gather: true
  register: facts

- ansible.builtin.assert:
    that: facts.klconfig.version is version('6.2', '>=')

- name: Look up the Administration Server through the SVM's DNS (read-only)
  ksvla.lightagent.svm_klconfig:
    host: "{{ svm.host }}"
    known_hosts: /etc/ksvla/known_hosts
    commands: [dnslookup ksc.example.com]
    commands_changed_when: never
  environment:
    KSVLA_KLCONFIG_PASSWORD: "{{ svm_klconfig_password }}"
`,
		Return: map[string]ansible.ReturnValue{
			"commands": {Description: []string{"The klconfig command lines run (in check mode: that would run), secrets masked: C(passwd) shows only its account."},
				Returned: "always", Type: "list", Sample: []any{"dns 192.0.2.53", "dnssearch example.com", "timezone Europe/Berlin"}},
			"settings": {Description: []string{"Per managed setting: C(current) (read from the SVM, or as recorded; null when never recorded), C(desired) and C(changed)."},
				Returned: "always", Type: "dict", Sample: map[string]any{"timezone": map[string]any{"current": nil, "desired": "Europe/Berlin", "changed": true}}},
			"vm": {Description: []string{"With O(vm): the VM, the SVM's host key fingerprint, how it was trusted (V(first_contact), V(recorded) on the VM, or V(policy): O(known_hosts)/O(host_key)) and the steps on the VM (in check mode: that would run)."},
				Returned: "when vm is set", Type: "dict",
				Sample: map[string]any{"name": "svm-esxi-01-6.2", "host_key": "SHA256:...", "trust": "first_contact",
					"steps": []any{"trust the host key presented at first contact and record it on the VM"}}},
			"host": {Description: []string{"Where the SVM answers now: O(host), or the new address after a network change."},
				Returned: "always", Type: "str", Sample: "192.0.2.45"},
			"outputs": {Description: []string{"Output lines of O(commands) run as read-only (O(commands_changed_when=never))."},
				Returned: "when commands_changed_when=never", Type: "list", Sample: []any{map[string]any{"command": "dnslookup ksc.example.com", "stdout_lines": []any{"192.0.2.10"}}}},
			"klconfig": {Description: []string{"What the SVM tells about itself."}, Returned: "when gather=true", Type: "dict",
				Contains: map[string]ansible.ReturnValue{
					"apiversion":  {Description: []string{"The klconfig script API version."}, Returned: "always", Type: "str", Sample: "1.0.0"},
					"version":     {Description: []string{"The Protection Server version."}, Returned: "always", Type: "str", Sample: "6.2.0.200"},
					"test":        {Description: []string{"The C(test) block parsed: user, date (RFC 3339), product, version, uptime."}, Returned: "always", Type: "dict"},
					"dns_servers": {Description: []string{"The DNS servers."}, Returned: "always", Type: "list", Sample: []any{"192.0.2.53"}},
					"dns_search":  {Description: []string{"The DNS search domains."}, Returned: "always", Type: "list", Sample: []any{"example.com"}},
				}},
		},
	}
}
