#!/usr/bin/env bash
# `make lint`: content quality of what users run and install.
#   1 ansible-lint (Debian's, production profile, offline; rules skipped in .ansible-lint with
#     their reasons) on playbooks/ and awx/ (configure.yml, with Debian's awx.awx);
#   2 ansible-test sanity's tests that run offline, on the collection staged as the tarball
#     ships it (binaries/ksvla_<os>_<arch>, the action plugin, plugins/modules/<m>.py docs);
#     not its ansible-doc test: for the .py files it builds a virtualenv with pip from the network;
#   3 ansible-doc on every module, as users run it: each listed by `ansible-doc -l` with its
#     short description, each rendered (--json and text) with no markup ansible-core 2.14 prints
#     raw (O(), V(), RV(), E() came with 2.15).
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

echo "== ansible-lint (production profile) on playbooks/ and awx/"
(cd "$root" && ansible-lint --nocolor -c "$root/.ansible-lint" playbooks/ awx/) || failed+=(ansible-lint)

echo "== ansible-test sanity on the staged collection"
py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
(cd "$coll" && ansible-test sanity --local --python "$py" \
  --test shebang --test symlinks --test line-endings --test no-illegal-filenames) ||
  failed+=(ansible-test)

echo "== ansible-doc on every module"
list=$(ansible-doc -t module -l ksvla.lightagent 2>&1) || failed+=("ansible-doc -l")
# A file ansible-doc cannot read (a binary in plugins/modules/, as the collection once shipped)
# is only a warning of -l, and hides that module.
if grep -Ei 'error|warning' <<<"$list"; then failed+=("ansible-doc -l"); fi
for m in $("$bin" list); do
  grep -Eq "^$m +[^ ]" <<<"$list" || { echo "$m: not listed by ansible-doc -l"; failed+=("ansible-doc -l $m"); }
  ansible-doc --json "$m" >/dev/null || { failed+=("ansible-doc $m"); continue; }
  raw=$(ansible-doc "$m" 2>&1 | grep -Eo '\b(O|V|RV|E)\([^)]*\)' | head -3)
  [ -z "$raw" ] || { echo "$m: raw markup: $raw"; failed+=("ansible-doc markup $m"); }
done

ansible-doc --json -t inventory ksvla.lightagent.hypervisors >/dev/null || failed+=("ansible-doc inventory ksvla.lightagent.hypervisors")

if [ ${#failed[@]} -gt 0 ]; then
  printf 'lint failed: %s\n' "${failed[@]}"
  exit 1
fi
echo "lint: clean"
