"""Runs ansible-core's own argument spec validator on the cases the Go
tests feed it on stdin, and prints what AnsibleModule would report.

Used by TestValidateMatchesAnsible when ansible-core is importable; run
with PYTHONHASHSEED=0 so Python's set orders are fixed.
"""
import json
import os
import sys

sys.path.insert(0, '/usr/lib/python3/dist-packages')

from ansible.module_utils.basic import PASSWORD_MATCH  # noqa: E402
from ansible.module_utils.common import warnings as w  # noqa: E402
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # noqa: E402
from ansible.module_utils.common.parameters import env_fallback  # noqa: E402
from ansible.module_utils.errors import UnsupportedError  # noqa: E402


def to_spec(spec):
    out = {}
    for o in spec.get('options') or []:
        d = {}
        for k in ('type', 'elements', 'required', 'aliases', 'no_log'):
            if o.get(k):
                d[k] = o[k]
        for k in ('default', 'choices'):
            if o.get(k) is not None:
                d[k] = o[k]
        if o.get('env'):
            d['fallback'] = (env_fallback, o['env'])
        if o.get('options') is not None:
            d['options'] = to_spec(o['options'])
            d.update(rules(o['options']))
        out[o['name']] = d
    return out


def rules(spec):
    r = {}
    for k in ('mutually_exclusive', 'required_together', 'required_one_of', 'required_by'):
        if spec.get(k):
            r[k] = spec[k]
    if spec.get('required_if'):
        r['required_if'] = [[x['key'], x['value'], x['requirements'], bool(x.get('any_of'))] for x in spec['required_if']]
    return r


def strip_aliases(spec, params):
    for name, o in spec.items():
        sub = o.get('options')
        if sub is None or not isinstance(params, dict):
            continue
        v = params.get(name)
        for d in (v if isinstance(v, list) else [v]):
            if isinstance(d, dict):
                for opt in sub.values():
                    for a in opt.get('aliases') or []:
                        if a not in sub:
                            d.pop(a, None)
                strip_aliases(sub, d)


def run(case):
    os.environ.clear()
    os.environ.update(case.get('env') or {})
    w._global_warnings[:] = []
    spec = to_spec(case['spec'])
    result = ArgumentSpecValidator(spec, **rules(case['spec'])).validate(case['args'])
    errors = []
    for e in result.errors:
        msg = e.msg
        if isinstance(e, UnsupportedError):
            msg = "Unsupported parameters for (%s) module: %s" % (case['module'], msg)
        errors.append(msg)
    warnings = list(w._global_warnings)
    warnings += ['Both option %s and its alias %s are set.' % (x['option'], x['alias']) for x in result._warnings]
    params = result.validated_parameters
    aliases = result._aliases
    if not errors:
        for p in params:
            canon = aliases.get(p, p)
            if spec.get(canon, {}).get('no_log') is None and PASSWORD_MATCH.search(p):
                warnings.append('Module did not set no_log for %s' % p)
    strip_aliases(spec, params)
    values = {k: params.get(k) for k in spec}
    return {'errors': errors, 'warnings': warnings, 'values': values,
            'no_log': sorted(str(x) for x in result._no_log_values)}


def main():
    out = []
    for case in json.load(sys.stdin):
        try:
            out.append(run(case))
        except Exception as e:  # a crash in ansible is a result too
            out.append({'crash': '%s: %s' % (type(e).__name__, e)})
    json.dump(out, sys.stdout, default=repr)


main()
