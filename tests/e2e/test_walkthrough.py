"""The walkthrough's first two steps with the built dist/etcdmgr.pyz, every daemon its own process.

One daemon and a spec of one member serve the v2 keys API; two more daemons and a spec of three
grow the cluster without restarting anything; `ctl get` prints the spec as the original does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Cluster, http, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"


def test_walkthrough_single_member_then_three(pyz: Path, make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed (scripts/install-etcd {VERSION})")
    c = make_cluster(3, command=[str(pyz)])

    # Step 1: one daemon, seeded with a one-member spec.
    c.start(1)
    c.configure(1, VERSION)
    c.wait_members(1, timeout=60)
    url = f"{c[1].client_url}/v2/keys/hello"
    put = wait_for("v2 put", lambda: http("PUT", url, {"value": "world"}), timeout=30)
    assert put["action"] == "set"
    assert put["node"]["value"] == "world"
    got = http("GET", url)
    assert (got["action"], got["node"]["key"], got["node"]["value"]) == ("get", "/hello", "world")

    # Step 2: two more daemons, then a spec of three; no daemon is restarted.
    c.start(2, 3)
    c.configure(3, VERSION)
    c.wait_members(3, timeout=90)
    members = http("GET", f"{c[1].client_url}/v2/members")["members"]
    assert sorted(m["peerURLs"][0] for m in members) == [f"http://{c[n].ip}:2380" for n in (1, 2, 3)]
    assert all(c.get("hello", n) == "world" for n in (1, 2, 3))
    assert all(d.running for d in c.daemons)

    assert c.ctl("get").stdout.strip().splitlines()[-1] == 'member_count:3 etcd_version:"3.4.23"'
