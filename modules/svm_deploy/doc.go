package svmdeploy

import "github.com/ksvla/lightagent/internal/ansible"

// Doc documents the module.
func (*module) Doc() ansible.Doc {
	return ansible.Doc{
		ShortDescription: "Deploy a KSVLA SVM from an OVA/OVF onto one ESXi host",
		Description: []string{
			"Deploys one Kaspersky Security for Virtualization Light Agent SVM (the appliance carrying the Protection Server) from its OVA or OVF image onto one ESXi host, the first step of the vendor's side-by-side upgrade.",
			"Streams the image to vCenter (no temporary copy), verifying it against its manifest; writes the first-boot commands (C(guestinfo.klfirstboot.cmdN)) into the new VM's configuration before its first power-on; marks the VM with custom attributes; powers it on and waits for its IP address.",
			"Idempotent: an SVM of this name on this host marked with this version is left as is (C(changed=false)), only powered on when it is off. It never overwrites anything: the same name with another version, a VM that is not a marked SVM, or the name on another host (unless its C(ksvla.host) mark names this host) make the module fail.",
			"Pins every SVM it deploys or finds to its host, since an SVM protects only the VMs of its own host: a DRS VM override with automation disabled, an HA VM override with restart disabled and, where the host is not in a vSphere HA cluster, a host autostart entry (HA clusters do not support autostart). A new SVM is pinned before its first power-on; an SVM found unpinned is pinned (C(changed=true)); the diff shows each setting under C(pin).",
			"Repairs an SVM it marked: powers it on when it is off (left off after maintenance mode, where autostart does not fire), and moves it back when it runs on another host than the one its C(ksvla.host) mark names (then re-pins it). A VM that is not a marked SVM is never touched.",
			"Before a new SVM is imported, the host must have the memory the image asks (its OVF, or O(memory_mb)) beside what its powered-on VMs are given, at least as many logical processors as the SVM's vCPUs, and the datastore the provisioned size of its disks; otherwise the module fails naming the host with what is needed and what is free (in check mode too, which is how C(upgrade.yml)'s pre-flight checks every host before any is touched).",
			"With O(state=absent) it powers off and deletes the SVM, but only a VM that carries the SVM marks.",
		},
		Notes: []string{
			"The marks are the custom attributes C(ksvla.role) (V(svm)), C(ksvla.version) (the Protection Server version), C(ksvla.image_sha256), C(ksvla.deployed_by) (V(ksvla.lightagent)) and C(ksvla.host) (the ESXi host it serves). The other modules of the collection recognise SVMs by them.",
			"C(ksvla.image_sha256) is the SHA-256 of the image's manifest (C(.mf)), which pins the digest of every file of the image; for an image without a manifest it is the SHA-256 of the OVF descriptor. It is not the checksum of the C(.ova) file: computing that would cost a full extra read of the image.",
			"An import that fails or runs out of O(timeout) aborts its NFC lease and deletes the half-created VM. If the module is killed instead, the VM is left with the extraConfig key C(ksvla.import=incomplete); the next run recognises it, deletes it and deploys again, reporting it in C(leftover) and as a warning.",
			"The NFC lease is kept alive with progress reports during long uploads, so large images do not time out at vCenter's idle lease limit; only O(timeout) bounds the module.",
			"Errors of vCenter's import-spec validation fail the module; its warnings become module warnings.",
			"Certificates are verified by default (O(validate_certs), O(ca_file)); a O(thumbprint) pins vCenter's certificate strictly: any other certificate is refused, even one a trusted CA signed.",
			"In check mode the placement, image, version and network mapping are checked and the plan is returned in C(plan); nothing is created, powered or deleted.",
		},
		Requirements: []string{"vCenter Server (custom attributes are a vCenter feature)."},
		CheckMode:    "full",
		DiffMode:     "full",
		Examples: `
- name: Deploy the new SVM on every ESXi host
  ksvla.lightagent.svm_deploy:
    hostname: vcenter.example.com
    username: automation@vsphere.local
    password: "{{ vcenter_password }}"
    ca_file: files/vcenter-ca.pem
    datacenter: DC1
    esxi_hostname: "{{ item }}"
    datastore: "{{ local_datastores[item] }}"
    folder: /DC1/vm/SVMs
    name: "svm-{{ item.split('.')[0] }}-6.2"
    image: /srv/images/ksvla-svm-6.2.0.200.ova
    version: 6.2.0.200
    networks:
      VM Network: SVM-Management
    first_boot:
      - network eth0 192.0.2.45 255.255.255.0 192.0.2.255 192.0.2.1
      - manageservices restart network
      - timezone Europe/Berlin
  loop: "{{ esxi_hosts }}"
  register: deployed

- name: Show the upload throughput
  ansible.builtin.debug:
    msg: "{{ item.svm.name }}: {{ item.upload.mib_per_s | default('not uploaded') }} MiB/s"
  loop: "{{ deployed.results }}"

- name: Deploy from a web server, powered off
  ksvla.lightagent.svm_deploy:
    esxi_hostname: esxi-01.example.com
    datastore: esxi-01-local
    name: svm-esxi-01-6.2
    image: https://images.example.com/ksvla/ksvla-svm-6.2.0.200.ova
    power_on: false

- name: Remove an old SVM
  ksvla.lightagent.svm_deploy:
    esxi_hostname: esxi-01.example.com
    name: svm-esxi-01-6.1
    version: 6.1.0.100
    state: absent
`,
		Return: map[string]ansible.ReturnValue{
			"svm": {Description: []string{"The SVM after the module's work (as found, when nothing was done or in check mode)."},
				Returned: "when the SVM exists", Type: "dict",
				Contains: map[string]ansible.ReturnValue{
					"name":          {Description: []string{"The VM name."}, Returned: "always", Type: "str", Sample: "svm-esxi-01-6.2"},
					"moid":          {Description: []string{"The VM's managed object id."}, Returned: "always", Type: "str", Sample: "vm-1042"},
					"instance_uuid": {Description: []string{"The VM's vCenter instance UUID."}, Returned: "always", Type: "str", Sample: "5003a7c1-8e9b-4a6e-9d6c-2f7d1e1c9b10"},
					"host":          {Description: []string{"The ESXi host it runs on."}, Returned: "always", Type: "str", Sample: "esxi-01.example.com"},
					"datastore":     {Description: []string{"The datastore holding its files."}, Returned: "always", Type: "str", Sample: "esxi-01-local"},
					"power_state":   {Description: []string{"V(poweredOn), V(poweredOff) or V(suspended)."}, Returned: "always", Type: "str", Sample: "poweredOn"},
					"ip":            {Description: []string{"The guest IP address VMware Tools report, empty when none."}, Returned: "always", Type: "str", Sample: "192.0.2.45"},
					"version":       {Description: []string{"The Protection Server version it is marked with."}, Returned: "always", Type: "str", Sample: "6.2.0.200"},
					"marks":         {Description: []string{"Every custom attribute set on the VM, by name."}, Returned: "always", Type: "dict", Sample: map[string]any{"ksvla.role": "svm", "ksvla.version": "6.2.0.200"}},
				}},
			"plan": {Description: []string{"The steps planned, in order: V(cleanup leftover), V(import), V(set marks), V(set first boot), V(power on), V(wait for IP), V(destroy). Empty when nothing was to be done."},
				Returned: "unless the module failed before planning", Type: "list", Sample: []any{"import", "set marks", "power on", "wait for IP"}},
			"upload": {Description: []string{"The image upload."}, Returned: "when the SVM was imported", Type: "dict",
				Contains: map[string]ansible.ReturnValue{
					"bytes":     {Description: []string{"Bytes sent to vCenter (the image's disk files)."}, Returned: "always", Type: "int", Sample: 1073741824},
					"seconds":   {Description: []string{"Time spent uploading."}, Returned: "always", Type: "float", Sample: 41.2},
					"mib_per_s": {Description: []string{"Upload throughput in MiB per second."}, Returned: "always", Type: "float", Sample: 24.85},
				}},
			"gates": {Description: []string{"With O(state=absent): the safety gates of M(ksvla.lightagent.svm_remove) on the SVM (C(name), C(passed), C(skipped), C(reason)), read right before the deletion; any gate that blocks fails the module with svm_remove's refusal and nothing is deleted."},
				Returned: "with O(state=absent) when the SVM exists", Type: "list"},
			"leftover": {Description: []string{"What an interrupted earlier run had left and this run removed."}, Returned: "when leftovers were removed", Type: "dict",
				Contains: map[string]ansible.ReturnValue{
					"vms":     {Description: []string{"Inventory paths of the half-created VMs removed."}, Returned: "always", Type: "list", Sample: []any{"/DC1/vm/svm-esxi-01-6.2"}},
					"removed": {Description: []string{"Always V(true)."}, Returned: "always", Type: "bool", Sample: true},
				}},
			"msg": {Description: []string{"What was done, or why the module failed."}, Returned: "always", Type: "str",
				Sample: "SVM svm-esxi-01-6.2 (version 6.2.0.200) deployed on esxi-01.example.com, poweredOn, IP 192.0.2.45"},
		},
	}
}
