# -*- coding: utf-8 -*-
# Copyright: ksvla.lightagent contributors
# Apache License 2.0 (see LICENSE)
"""Which of the collection's module binaries (binaries/ksvla_<os>_<arch>) runs on a machine."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleError

BINARY = "ksvla"
BINARIES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "binaries")

# `uname -m` answers -> Go's GOARCH; `uname -s` lowercased is GOOS for every OS Go and Ansible share.
GOARCH = {
    "x86_64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "i386": "386", "i686": "386",
    "armv7l": "arm", "armv6l": "arm",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}

# Test-only switch, never needed in use: KSVLA_TEST_UNAME stands in for `uname -sm`, so the tests
# pick another platform's binary on one machine.
ENV_UNAME = "KSVLA_TEST_UNAME"


def platform_of(uname):
    """Returns (goos, goarch) for a `uname -sm` answer such as 'Linux aarch64'."""
    parts = uname.split()
    if len(parts) != 2:
        raise AnsibleError("ksvla.lightagent: cannot tell the platform from `uname -sm` output %r" % uname)
    system, machine = parts
    return system.lower(), GOARCH.get(machine, machine.lower())


def binary_for(goos, goarch, directory=BINARIES_DIR):
    """The path of the module binary for a platform; fails with one line naming how to build it."""
    path = os.path.join(directory, "%s_%s_%s" % (BINARY, goos, goarch))
    if os.path.isfile(path):
        return path
    raise AnsibleError(
        "ksvla.lightagent has no module binary for %s/%s: build one from the collection's source with "
        "`CGO_ENABLED=0 GOOS=%s GOARCH=%s go build -trimpath -o %s ./cmd/ksvla`"
        % (goos, goarch, goos, goarch, path))


def local_uname():
    """`uname -sm` of this machine (the controller), or the test-only stand-in."""
    if os.environ.get(ENV_UNAME):
        return os.environ[ENV_UNAME]
    u = os.uname()
    return "%s %s" % (u.sysname, u.machine)
