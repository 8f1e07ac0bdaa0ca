# -*- coding: utf-8 -*-
# Copyright: ksvla.lightagent contributors
# Apache License 2.0 (see LICENSE)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: hypervisors
short_description: The ESXi hosts that carry KSVLA SVMs, from vCenter and Kaspersky Security Center
version_added: 0.1.0
author:
  - ksvla.lightagent developers
description:
  - Makes the hypervisors to upgrade inventory hosts, so C(--limit), AWX job slicing, AWX's per-host
    status and smart inventories see them.
  - Every ESXi host that carries an SVM is in group C(ksvla_hypervisors), and in C(ksvla_dc_<datacenter>)
    and C(ksvla_cluster_<cluster>) (other characters than letters, digits and C(_) become C(_)).
  - "Host variables: C(ksvla_svms) (Protection Server version to SVM names), C(ksvla_ready) (every Light
    Agent on the host runs a version the target serves), C(ksvla_agents), C(ksvla_agents_pending),
    C(ksvla_unprotected), C(ksvla_datacenter), C(ksvla_cluster), C(ksvla_target_version)."
  - Reads vCenter and KSC as M(ksvla.lightagent.agent_facts) does, with the same options and environment
    variables, by running the collection's binary for the controller's platform (C(ksvla --list), the
    binary is an inventory script too). Secrets reach it through its environment, never its arguments.
  - The inventory file's name must end in C(ksvla_hypervisors.yml) or C(ksvla_hypervisors.yaml).
options:
  plugin:
    description: Marks the file as this plugin's.
    type: str
    required: true
    choices: [ksvla.lightagent.hypervisors]
  target_version:
    description: "The Protection Server version the upgrade goes to: the hosts' readiness is measured against it."
    type: str
    required: true
    env:
      - name: KSVLA_TARGET_VERSION
  datacenter:
    description: "Only the hypervisors of this datacenter."
    type: str
    env:
      - name: KSVLA_DATACENTER
  cluster:
    description: "Only the hypervisors of this cluster (name or inventory path inside I(datacenter))."
    type: str
    env:
      - name: KSVLA_CLUSTER
  hostname:
    description: "The vCenter Server, as the modules' C(hostname)."
    type: str
    env:
      - name: VMWARE_HOST
  username:
    description: "The vCenter user."
    type: str
    env:
      - name: VMWARE_USER
  password:
    description: "The vCenter user's password."
    type: str
    env:
      - name: VMWARE_PASSWORD
  port:
    description: "The vCenter port."
    type: int
    env:
      - name: VMWARE_PORT
  validate_certs:
    description: "Whether vCenter's certificate is verified."
    type: bool
    env:
      - name: VMWARE_VALIDATE_CERTS
  ca_file:
    description: "CA bundle vCenter's certificate is verified against."
    type: path
    env:
      - name: VMWARE_CA_FILE
  thumbprint:
    description: "SHA-1 thumbprint vCenter's certificate must have."
    type: str
    env:
      - name: VMWARE_THUMBPRINT
  ksc_url:
    description: "The Kaspersky Security Center OpenAPI URL, as the modules' C(ksc_url)."
    type: str
    env:
      - name: KSC_URL
  ksc_username:
    description: "The KSC user."
    type: str
    env:
      - name: KSC_USERNAME
  ksc_password:
    description: "The KSC user's password."
    type: str
    env:
      - name: KSC_PASSWORD
  ksc_internal_user:
    description: "Whether I(ksc_username) is a KSC internal user."
    type: bool
    env:
      - name: KSC_INTERNAL_USER
  ksc_vserver:
    description: "The KSC virtual server."
    type: str
    env:
      - name: KSC_VSERVER
  ksc_ca_file:
    description: "CA bundle KSC's certificate is verified against."
    type: path
    env:
      - name: KSC_CA_FILE
  ksc_fingerprint:
    description: "SHA-256 fingerprint KSC's certificate must have."
    type: str
    env:
      - name: KSC_FINGERPRINT
  ksc_validate_certs:
    description: "Whether KSC's certificate is verified."
    type: bool
    env:
      - name: KSC_VALIDATE_CERTS
"""

EXAMPLES = r"""
# inventory/ksvla_hypervisors.yml; credentials from VMWARE_* and KSC_* (AWX credentials inject them)
plugin: ksvla.lightagent.hypervisors
target_version: 6.2.0.200
datacenter: DC-Moscow
"""

import json
import os
import subprocess

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible_collections.ksvla.lightagent.plugins.plugin_utils.platform import binary_for, local_uname, platform_of

# Option -> the environment variable the binary reads it from (the modules' fallbacks).
ENV = {
    "target_version": "KSVLA_TARGET_VERSION",
    "datacenter": "KSVLA_DATACENTER",
    "cluster": "KSVLA_CLUSTER",
    "hostname": "VMWARE_HOST",
    "username": "VMWARE_USER",
    "password": "VMWARE_PASSWORD",
    "port": "VMWARE_PORT",
    "validate_certs": "VMWARE_VALIDATE_CERTS",
    "ca_file": "VMWARE_CA_FILE",
    "thumbprint": "VMWARE_THUMBPRINT",
    "ksc_url": "KSC_URL",
    "ksc_username": "KSC_USERNAME",
    "ksc_password": "KSC_PASSWORD",
    "ksc_internal_user": "KSC_INTERNAL_USER",
    "ksc_vserver": "KSC_VSERVER",
    "ksc_ca_file": "KSC_CA_FILE",
    "ksc_fingerprint": "KSC_FINGERPRINT",
    "ksc_validate_certs": "KSC_VALIDATE_CERTS",
}


class InventoryModule(BaseInventoryPlugin):
    NAME = "ksvla.lightagent.hypervisors"

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(
            ("ksvla_hypervisors.yml", "ksvla_hypervisors.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        env = dict(os.environ)
        for opt, var in ENV.items():
            value = self.get_option(opt)
            if value is not None:
                env[var] = str(value).lower() if isinstance(value, bool) else str(value)
        binary = binary_for(*platform_of(local_uname()))
        proc = subprocess.run([binary, "--list"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            raise AnsibleParserError(proc.stderr.decode("utf-8", "replace").strip() or "ksvla --list failed")
        data = json.loads(proc.stdout)
        hostvars = data.pop("_meta", {}).get("hostvars", {})
        for group, body in sorted(data.items()):
            self.inventory.add_group(group)
            for host in body.get("hosts", []):
                self.inventory.add_host(host, group=group)
        for group, body in data.items():
            for child in body.get("children", []):
                self.inventory.add_group(child)
                self.inventory.add_child(group, child)
        for host, hvars in hostvars.items():
            for k, v in hvars.items():
                self.inventory.set_variable(host, k, v)
