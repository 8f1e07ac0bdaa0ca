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

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash
from ansible_collections.ksvla.lightagent.plugins.plugin_utils.platform import ENV_UNAME, binary_for, local_uname, platform_of

# Test-only switch, never needed in use: KSVLA_TEST_EXEC_WRAPPER runs the binary through a program
# (e.g. qemu-aarch64), so the tests run another platform's binary through this dispatch on one
# machine (with KSVLA_TEST_UNAME, see plugin_utils/platform.py).
ENV_WRAPPER = "KSVLA_TEST_EXEC_WRAPPER"


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
        except AnsibleError as e:
            if not getattr(self, "_ksvla_binary", None):
                # One line, no traceback: the platform is the problem, not the code.
                result.update(failed=True, msg=e.message)
            else:
                raise
        finally:
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _module_name(self):
        # The binary picks its module from _ansible_module_name: give it the FQCN of the module
        # the task names (a short name under a play's `collections:` too).
        ctx = self._shared_loader_obj.module_loader.find_plugin_with_context(
            self._task.action, collection_list=self._task.collections)
        return ctx.resolved_fqcn if ctx.resolved else self._task.action

    def _target_uname(self):
        if self._connection.transport == "local" or getattr(self._connection, "_remote_is_local", False):
            return local_uname()  # the usual case for these modules: no process to ask
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
