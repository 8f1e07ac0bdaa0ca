#!/usr/bin/env python3
"""Checks every awx.awx task of a playbook against that module's own argument spec.

Usage: validate_awx.py PLAYBOOK VARS_FILE
Each task calling awx.awx.<module> is templated with VARS_FILE (and, for a loop, each item) by
Ansible's Templar, then validated by ansible-core's ArgumentSpecValidator with the argument_spec,
mutually_exclusive, required_* rules the module itself gives AnsibleModule: the awx.awx modules
build those inside main(), so main() is run until it constructs AnsibleModule, where they are
taken. Prints one line per task; exits 1 if any task's arguments are invalid or no awx.awx task
was found.
"""
import importlib
import os
import sys

from ansible.module_utils import basic
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

PREFIX = "awx.awx."
OMIT = "__omit_place_holder__ksvla"
RULES = ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")


class _Captured(Exception):
    pass


def module_rules(name):
    """The keyword arguments awx.awx.<name> passes to AnsibleModule."""
    got = {}
    orig = basic.AnsibleModule.__init__

    def grab(self, *args, **kwargs):
        got.update(kwargs)
        if args:
            got["argument_spec"] = args[0]
        raise _Captured()

    basic.AnsibleModule.__init__ = grab
    try:
        mod = importlib.import_module("ansible_collections.awx.awx.plugins.modules." + name)
        try:
            mod.main()
        except _Captured:
            pass
    finally:
        basic.AnsibleModule.__init__ = orig
    if "argument_spec" not in got:
        raise SystemExit("awx.awx.%s never built its AnsibleModule" % name)
    return got


def tasks_of(play):
    for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
        for task in play.get(key) or []:
            for inner in ("block", "rescue", "always"):
                for t in task.get(inner) or []:
                    yield t
            yield task


def main():
    playbook, vars_file = sys.argv[1], sys.argv[2]
    loader = DataLoader()
    loader.set_basedir(os.path.dirname(os.path.abspath(playbook)))
    # Ansible's own loader: it knows !unsafe and !vault.
    plays = loader.load_from_file(os.path.abspath(playbook))
    variables = dict(loader.load_from_file(os.path.abspath(vars_file)) or {})
    variables["omit"] = OMIT
    bad, checked = 0, 0
    for play in plays:
        play_vars = dict(variables)
        templar = Templar(loader=loader, variables=play_vars)
        for k, v in (play.get("vars") or {}).items():
            play_vars[k] = v
        for task in tasks_of(play):
            action = next((k for k in task if k.startswith(PREFIX)), None)
            if action is None:
                continue
            rules = module_rules(action[len(PREFIX):])
            items = [None]
            if "loop" in task:
                items = templar.template(task["loop"])
            for i, item in enumerate(items):
                templar.available_variables = dict(play_vars, item=item)
                args = {k: v for k, v in templar.template(task[action]).items() if v != OMIT}
                # Never the item itself in the report: it may hold a credential's inputs.
                label = (task.get("loop_control") or {}).get("label")
                label = "" if item is None else " [%s]" % (templar.template(label) if label else "item %d" % (i + 1))
                result = ArgumentSpecValidator(rules["argument_spec"], **{k: rules[k] for k in RULES if k in rules}).validate(args)
                checked += 1
                label = task.get("name", action) + label
                if result.error_messages:
                    bad += 1
                    print("INVALID %s (%s): %s" % (label, action, "; ".join(result.error_messages)))
                else:
                    print("ok %s (%s)" % (label, action))
    if checked == 0:
        print("no awx.awx task found")
        return 1
    print("%d awx.awx calls checked, %d invalid" % (checked, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
