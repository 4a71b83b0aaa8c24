"""A TLS daemon started with umask 0 keeps every key 0600 and every folder holding keys 0700,
and reports keys that others can read when it starts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from harness import Cluster, wait_for
from key_modes import loose, umask

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]
VERSION = "3.5.30"


def test_keys_stay_private_whatever_the_umask(make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    with umask(0):
        c = make_cluster(1, tls=True)
        c.configure(1, VERSION)
        c.start()
    c.wait_members(1, timeout=90)
    d = c[1]
    assert loose(c.pki_dir) == {}
    assert loose(c.client_dir) == {}
    # The peer API's certificates (pki/manager) and etcd's (pki/<cluster token>/{peers,clients}).
    names = sorted(p.name for p in (d.data_dir / "pki").iterdir())
    assert len(names) == 2 and "manager" in names
    assert loose(d.data_dir / "pki") == {}
    assert "group or others can reach" not in d.log()

    d.stop()
    (c.pki_dir / "etcd-peers-ca.key").chmod(0o644)
    d.start()
    wait_for("the warning", lambda: "group or others can reach" in d.log(), timeout=30)
    assert f"key {c.pki_dir / 'etcd-peers-ca.key'} has mode 0644; expected 0600" in d.log()
