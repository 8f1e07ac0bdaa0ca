#!/usr/bin/env bash
# Stages the collection ksvla.lightagent under DEST/ansible_collections/ksvla/lightagent
# from the repository and a built binary: plugins/modules/agent_facts is the binary (copied with
# --copy, else a link to it), every other module a link to agent_facts, each with its sidecar docs.
# `make build` stages a linked development copy in collections/ (ansible.cfg looks there, so
# playbooks call modules by FQCN from a checkout); `make collection` a copied one to build the tarball;
# the end-to-end tests one of their own.
set -euo pipefail
bin=$1 dest=$2 mode=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)
coll="$dest/ansible_collections/ksvla/lightagent"
rm -rf "$coll"
mkdir -p "$coll/plugins/modules"
cp "$root/galaxy.yml" "$root/README.md" "$root/LICENSE" "$root/CHANGELOG.rst" "$root/execution-environment.yml" "$coll/"
cp -r "$root/meta" "$root/docs" "$root/awx" "$root/changelogs" "$coll/"
[ -d "$root/playbooks" ] && cp -r "$root/playbooks" "$coll/"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
if [ "$mode" = "--copy" ]; then cp "$bin" "$coll/plugins/modules/agent_facts"; else ln -s "$bin" "$coll/plugins/modules/agent_facts"; fi
for m in $("$bin" list); do
  m=${m##*.}
  [ "$m" = agent_facts ] || ln -s agent_facts "$coll/plugins/modules/$m"
  cp "$root/library/$m.yml" "$coll/plugins/modules/$m.yml"
done
