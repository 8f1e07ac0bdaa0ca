#!/usr/bin/env bash
# `make demo`: starts a 4-host lab, shows the fleet, runs the whole upgrade with the real
# ansible-playbook, shows the fleet again, stops the lab. Needs `make build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${LAB_DIR:-.lab}
hosts=${LAB_HOSTS:-4}
vms=${LAB_VMS:-3}

bin/ksvla-lab down -dir "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
# Its own 127.N.0.0/16, so the SVMs can serve klconfig on port 22 (when root) even while test
# labs run on the same machine.
net=${LAB_NET:-$((100 + RANDOM % 100))}
bin/ksvla-lab up -dir "$dir" -hosts "$hosts" -vms "$vms" -loopback-net "$net" -agent-update 2s -network-restart 1s >"$dir.log" 2>&1 &
lab=$!
trap 'bin/ksvla-lab down -dir "$dir" >/dev/null 2>&1 || kill $lab 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ -s "$dir/lab.addr" ] && break
  kill -0 $lab 2>/dev/null || { cat "$dir.log"; exit 1; }
  sleep 0.1
done

echo "== fleet before the upgrade"
bin/ksvla-lab status -dir "$dir"
echo
echo "== ansible-playbook playbooks/upgrade.yml"
ansible-playbook playbooks/upgrade.yml -e @"$dir/vars.yml" \
  -e upgrade_batch_size=2 -e agent_wait_delay=1 -e ksc_wait_delay=1 -e ksc_task_poll=1
echo
echo "== fleet after the upgrade"
bin/ksvla-lab status -dir "$dir"
