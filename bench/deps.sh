#!/usr/bin/env bash
# Installs what `make bench` compares against, each step skipped when already there:
#   - ansible (Debian's full package: community.vmware 3.7.0), curl, python3-requests/six
#   - govc v0.46.3 into bench/.bin (go install; the last release whose module still holds govc/)
#   - pyVmomi 8 into bench/.py: Debian 13 (trixie)'s python3-pyvmomi .deb, downloaded with apt
#     through a private apt configuration (the system's sources are untouched) and unpacked with
#     dpkg-deb. Debian 12's 6.7.1 cannot parse the simulator's service content.
# A peer that cannot be installed is reported as "not measured" by the suite, not faked.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
need=()
command -v ansible-playbook >/dev/null || need+=(ansible)
[ -d /usr/lib/python3/dist-packages/ansible_collections/community/vmware ] || need+=(ansible)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/bin/time ] || need+=(time)
/usr/bin/python3 -c 'import requests, six' 2>/dev/null || need+=(python3-requests python3-six)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench deps: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x "$here/.bin/govc" ]; then
  echo "bench deps: go install govc@v0.46.3"
  GOBIN="$here/.bin" GOFLAGS=-mod=mod go install github.com/vmware/govmomi/govc@v0.46.3
fi

if [ ! -f "$here/.py/pyVmomi/__init__.py" ]; then
  echo "bench deps: pyVmomi 8 from Debian trixie"
  apt_dir=$(mktemp -d)
  trap 'rm -rf "$apt_dir"' EXIT
  mkdir -p "$apt_dir"/etc/sources.list.d "$apt_dir"/etc/preferences.d "$apt_dir"/etc/apt.conf.d "$apt_dir"/state/lists/partial "$apt_dir"/cache/archives/partial "$apt_dir"/deb
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    > "$apt_dir/etc/sources.list"
  apt_opts=(-o "Dir::Etc=$apt_dir/etc" -o "Dir::Etc::sourcelist=$apt_dir/etc/sources.list"
    -o "Dir::Etc::sourceparts=$apt_dir/etc/sources.list.d" -o "Dir::State=$apt_dir/state"
    -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root")
  if apt-get "${apt_opts[@]}" update -qq && (cd "$apt_dir/deb" && apt-get "${apt_opts[@]}" download -qq python3-pyvmomi); then
    dpkg-deb -x "$apt_dir"/deb/python3-pyvmomi_*.deb "$apt_dir/root"
    rm -rf "$here/.py" && mkdir -p "$here/.py"
    cp -a "$apt_dir"/root/usr/lib/python3/dist-packages/. "$here/.py/"
  else
    echo "bench deps: could not fetch python3-pyvmomi from trixie; the Python peers will be reported as not measured" >&2
  fi
fi
