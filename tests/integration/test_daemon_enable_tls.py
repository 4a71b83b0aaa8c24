"""Insecure -> TLS on a running cluster (the original's TestEnableTLS): restarting each daemon
without --etcd-insecure, one at a time, moves every member to https with no data lost."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from harness import Cluster, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.5.30"


def _insecure(args: list[str]) -> list[str]:
    """The same daemon with etcd over plain http (the peer API keeps its mutual TLS)."""
    return [a.replace("https://", "http://") for a in args] + ["--etcd-insecure"]


def test_enable_tls_one_daemon_at_a_time(make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(3, tls=True)
    secure_args = {d.n: d.args for d in c.daemons}
    for d in c.daemons:
        d.args, d.scheme = _insecure(d.args), "http"
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    c.put("hello", "world")

    for d in c.daemons:
        d.stop()
        d.args, d.scheme = secure_args[d.n], "https"
        d.start()
        wait_for(
            f"member {d.n} registered with https peer URLs",
            lambda d=d: any(
                m["peerURLs"] == [f"https://{d.ip}:2380"] and m.get("clientURLs") == [d.client_url]
                for m in c.members() or []
            ),
            timeout=90,
        )
        c.wait_members(3, timeout=90)
        assert c.get("hello", d.n) == "world"

    members = c.members() or []
    assert all(m["peerURLs"][0].startswith("https://") for m in members)
    assert all(m["clientURLs"][0].startswith("https://") for m in members)
