#!/usr/bin/env bash
# Stages the collection ksvla.lightagent under DEST/ansible_collections/ksvla/lightagent
# from the repository and a built binary BIN (built for this machine):
#   binaries/ksvla_<os>_<arch>  the module binary per platform (BIN for this machine, copied with
#                               --copy, else a link to it; with PLATFORM_DIR also every ksvla_* there)
#   plugins/action/ksvla.py     runs the binary for the machine a module runs on (meta/runtime.yml
#                               names it every module's action_plugin)
#   plugins/modules/<m>.py      each module's documentation for ansible-doc, written by BIN
# `make build` stages a linked development copy in collections/ (ansible.cfg looks there, so
# playbooks call modules by FQCN from a checkout); `make collection` a copied one with every
# platform's binary to build the tarball; the end-to-end tests one of their own.
# Usage: tests/stage-collection.sh BIN DEST [--copy [PLATFORM_DIR]]
set -euo pipefail
bin=$1 dest=$2 mode=${3:-} platforms=${4:-}
root=$(cd "$(dirname "$0")/.." && pwd)
coll="$dest/ansible_collections/ksvla/lightagent"
rm -rf "$coll"
mkdir -p "$coll/plugins/modules" "$coll/binaries"
cp "$root/galaxy.yml" "$root/README.md" "$root/LICENSE" "$root/CHANGELOG.rst" "$root/execution-environment.yml" "$coll/"
cp -r "$root/meta" "$root/docs" "$root/awx" "$root/changelogs" "$coll/"
cp -r "$root/plugins/." "$coll/plugins/"
[ -d "$root/playbooks" ] && cp -r "$root/playbooks" "$coll/"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
host=$("$bin" platform)
if [ "$mode" = "--copy" ]; then cp "$bin" "$coll/binaries/ksvla_$host"; else ln -s "$bin" "$coll/binaries/ksvla_$host"; fi
if [ -n "$platforms" ]; then cp "$platforms"/ksvla_* "$coll/binaries/"; fi
# Docs come from this machine's binary: a foreign platform's binary cannot run here.
"$bin" stubs "$coll/plugins/modules"
