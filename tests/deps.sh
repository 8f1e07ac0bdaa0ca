#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine: ansible-core
# (Debian's 2.14), the OpenSSH client, ansible-runner, ansible-lint, Chromium's headless shell
# (the status page test), qemu-user (the collection test) and Debian's full ansible for awx.awx
# (awx/configure.yml). Does nothing when they are there.
set -euo pipefail
need=()
command -v ansible-playbook >/dev/null || need+=(ansible-core)
command -v ssh >/dev/null || need+=(openssh-client)
command -v curl >/dev/null || need+=(curl)
command -v ansible-runner >/dev/null || need+=(python3-ansible-runner)
command -v ansible-lint >/dev/null || need+=(ansible-lint)
command -v chromium-headless-shell >/dev/null || need+=(chromium-headless-shell)
# awx/configure.yml is linted and checked against the awx.awx collection in Debian's full ansible.
[ -d /usr/lib/python3/dist-packages/ansible_collections/awx/awx ] || need+=(ansible)
# The collection test runs the linux/arm64 module binary through the action plugin's dispatch.
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing: ${need[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
