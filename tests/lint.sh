#!/usr/bin/env bash
# `make lint`: content quality of what users run and install.
#   1 ansible-lint (Debian's, production profile, offline; rules skipped in .ansible-lint with
#     their reasons) on playbooks/;
#   2 ansible-test sanity's tests that run offline, on the collection staged as the tarball
#     ships it (plugins/modules/agent_facts the binary, the other modules links to it);
#   3 ansible-doc --json on every module: ansible-test's ansible-doc test only looks at *.py
#     plugins (ansible-core 2.14), so it would pass whatever our binary modules' sidecar docs say.
# Runs every check and fails at the end if any failed, so one run names every problem.
# Usage: tests/lint.sh [path/to/ksvla]   (default bin/ksvla, as `make bin-modules` builds it)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/bin/ksvla}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=()

bash "$root/tests/stage-collection.sh" "$bin" "$tmp" --copy || exit 1
coll="$tmp/ansible_collections/ksvla/lightagent"
export ANSIBLE_COLLECTIONS_PATH="$tmp" ANSIBLE_NOCOLOR=1

echo "== ansible-lint (production profile) on playbooks/"
(cd "$root" && ansible-lint --nocolor -c "$root/.ansible-lint" playbooks/) || failed+=(ansible-lint)

echo "== ansible-test sanity on the staged collection"
py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
(cd "$coll" && ansible-test sanity --local --python "$py" \
  --test ansible-doc --test shebang --test symlinks --test line-endings --test no-illegal-filenames) ||
  failed+=(ansible-test)

echo "== ansible-doc on every module"
for m in $("$bin" list); do
  ansible-doc --json "$m" >/dev/null || failed+=("ansible-doc $m")
done

if [ ${#failed[@]} -gt 0 ]; then
  printf 'lint failed: %s\n' "${failed[@]}"
  exit 1
fi
echo "lint: clean"
