# Test-only callback: appends every task result as one JSON line to the file
# named by KSVLA_RESULTS_FILE, so Go tests can assert on what the real
# ansible-playbook saw. Core 2.14 ships no JSON callback (ansible.posix.json is
# not installed with Debian's ansible-core --no-install-recommends).
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: ksvla_results
type: aggregate
short_description: write task results as JSON lines for tests
description: [Writes each task result to the file named by KSVLA_RESULTS_FILE.]
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'ksvla_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get('KSVLA_RESULTS_FILE')

    def _write(self, status, result):
        if not self._path:
            return
        rec = {
            'status': status,
            'host': result._host.get_name(),
            'task': result._task.get_name(),
            'action': result._task.action,
            'result': result._result,
        }
        with open(self._path, 'a', encoding='utf-8') as f:
            f.write(json.dumps(rec, default=str) + '\n')

    def v2_runner_on_ok(self, result):
        self._write('ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write('ignored' if ignore_errors else 'failed', result)

    def v2_runner_on_skipped(self, result):
        self._write('skipped', result)

    def v2_runner_item_on_ok(self, result):
        self._write('item_ok', result)

    def v2_runner_item_on_failed(self, result):
        self._write('item_failed', result)

    def v2_playbook_on_stats(self, stats):
        if not self._path:
            return
        summary = {h: stats.summarize(h) for h in sorted(stats.processed.keys())}
        with open(self._path, 'a', encoding='utf-8') as f:
            f.write(json.dumps({'status': 'stats', 'stats': summary}) + '\n')
