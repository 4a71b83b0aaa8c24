"""etcd version changes on a running 3-member cluster, without restarting any daemon.

Each test goes from one version to another and back, with v3 and v2 data checked both ways:
in place where etcd allows it (a patch change, one minor up), logically otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from harness import Cluster, wait_for

from etcdmgr.etcd.versions import find_binaries, has_v2_api, in_place_upgrade_ok

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

PAIRS = [("3.3.25", "3.4.23"), ("3.4.23", "3.5.30"), ("3.3.25", "3.5.30"), ("3.5.16", "3.5.30")]


def _state_versions(c: Cluster) -> set[str]:
    import json

    return {
        json.loads((d.data_dir / "state").read_text())["etcdVersion"]
        for d in c.daemons
        if (d.data_dir / "state").exists()
    }


def _move(c: Cluster, version: str) -> None:
    c.configure(3, version)
    wait_for(f"every member on {version}", lambda: _state_versions(c) == {version}, timeout=180)
    c.wait_members(3, timeout=120)


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_version_change_both_ways_keeps_data(make_cluster: Callable[..., Cluster], a: str, b: str) -> None:
    for v in (a, b):
        if find_binaries(v) is None:
            pytest.skip(f"etcd {v} is not installed")
    c = make_cluster(3)
    c.configure(3, a)
    c.start()
    c.wait_members(3)
    c.etcdctl(1, "put", "/v3key", "kept")
    c.put("hello", "world")

    for target, source in ((b, a), (a, b)):
        _move(c, target)
        assert c.get3("/v3key", 2) == "kept"
        if has_v2_api(target):
            assert c.get("hello", 3) == "world"
        if not in_place_upgrade_ok(source, target):
            # A logical change carries v2 keys into the v3 keyspace too (the walkthrough's check).
            assert c.get3("/hello", 1) == "world"
