# -*- coding: utf-8 -*-
# Copyright: ksvla.lightagent contributors
# Apache License 2.0 (see LICENSE)
"""Runs a ksvla.lightagent module as the Go binary built for the machine it runs on.

Every module of the collection is one multi-call Go binary, built per platform as
binaries/ksvla_<os>_<arch> (GOOS/GOARCH names). meta/runtime.yml names this plugin as every
module's action_plugin; it asks the target (the controller, for these modules) for `uname -sm`, picks that
platform's binary and runs it with Ansible's ordinary binary-module protocol, so check mode,
diff, no_log and module_defaults groups behave as for any module. plugins/modules/<name>.py
only carries the module's documentation for ansible-doc.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

BINARY = "ksvla"
BINARIES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "binaries")

# `uname -m` answers -> Go's GOARCH; `uname -s` lowercased is GOOS for every OS Go and Ansible share.
GOARCH = {
    "x86_64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "i386": "386", "i686": "386",
    "armv7l": "arm", "armv6l": "arm",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}

# Test-only switches, never needed in use: KSVLA_TEST_UNAME stands in for the target's `uname -sm`,
# KSVLA_TEST_EXEC_WRAPPER runs the binary through a program (e.g. qemu-aarch64), so the tests run
# another platform's binary through this dispatch on one machine.
ENV_UNAME = "KSVLA_TEST_UNAME"
ENV_WRAPPER = "KSVLA_TEST_EXEC_WRAPPER"


def platform_of(uname):
    """Returns (goos, goarch) for a `uname -sm` answer such as 'Linux aarch64'."""
    parts = uname.split()
    if len(parts) != 2:
        raise AnsibleActionFail("ksvla.lightagent: cannot tell the platform from `uname -sm` output %r" % uname)
    system, machine = parts
    return system.lower(), GOARCH.get(machine, machine.lower())


def binary_for(goos, goarch, directory=BINARIES_DIR):
    """The path of the module binary for a platform; fails with one line naming how to build it."""
    path = os.path.join(directory, "%s_%s_%s" % (BINARY, goos, goarch))
    if os.path.isfile(path):
        return path
    raise AnsibleActionFail(
        "ksvla.lightagent has no module binary for %s/%s: build one from the collection's source with "
        "`CGO_ENABLED=0 GOOS=%s GOARCH=%s go build -trimpath -o %s ./cmd/ksvla`"
        % (goos, goarch, goos, goarch, path))


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        self._supports_async = True
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        wrap_async = self._task.async_val and not self._connection.has_native_async
        try:
            self._ksvla_binary = binary_for(*platform_of(self._target_uname()))
            result = merge_hash(result, self._execute_module(module_name=self._module_name(), task_vars=task_vars,
                                                             wrap_async=wrap_async))
        except AnsibleActionFail as e:
            # One line, no traceback: the platform is the problem, not the code.
            result.update(failed=True, msg=e.message)
        finally:
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _module_name(self):
        # The binary picks its module from _ansible_module_name: give it the FQCN of the module
        # the task names (the task's resolved_action is this plugin, where routing led).
        ctx = self._shared_loader_obj.module_loader.find_plugin_with_context(
            self._task.action, collection_list=self._task.collections)
        return ctx.resolved_fqcn if ctx.resolved else self._task.action

    def _target_uname(self):
        if os.environ.get(ENV_UNAME):
            return os.environ[ENV_UNAME]
        res = self._low_level_execute_command("uname -sm", sudoable=False)
        if res.get("rc") != 0:
            raise AnsibleActionFail("ksvla.lightagent: `uname -sm` failed on the target (rc=%s): %s"
                                    % (res.get("rc"), (res.get("stderr") or res.get("stdout") or "").strip()))
        return res.get("stdout", "").strip()

    def _configure_module(self, module_name, module_args, task_vars):
        if module_name != self._module_name():
            return super(ActionModule, self)._configure_module(module_name, module_args, task_vars)
        wrapper = os.environ.get(ENV_WRAPPER)
        # A binary module has no interpreter line; a shebang set here prefixes the command Ansible runs.
        shebang = "#!" + wrapper if wrapper else None
        return "binary", shebang, b"", self._ksvla_binary
