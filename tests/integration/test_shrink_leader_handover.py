"""A shrink that removes etcd's leader hands its leadership to a member that stays first: removing
the leader itself costs an etcd election, 2-3 s in which no write succeeds (found by the soak)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable

import pytest
from harness import Cluster, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"


@pytest.fixture(autouse=True)
def _need_etcd() -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")


def etcd_leader(c: Cluster) -> int:
    status = json.loads(c.etcdctl(1, "endpoint", "status", "-w", "json"))
    return int(status[0]["Status"]["leader"])


def make_leader(c: Cluster, member_id: int) -> None:
    """etcdctl sends move-leader to the leader's endpoint: try each member's."""
    for n in (1, 2, 3):
        try:
            c.etcdctl(n, "move-leader", f"{member_id:x}")
            break
        except AssertionError:
            continue
    wait_for("etcd's leadership to move", lambda: etcd_leader(c) == member_id, timeout=20)


def test_shrinking_away_the_etcd_leader_moves_its_leadership_first(
    make_cluster: Callable[..., Cluster],
) -> None:
    c = make_cluster(3)
    c.configure(3, VERSION)
    c.start()
    members = c.wait_members(3)
    # The shrink removes the highest name of healthy members: make it etcd's leader.
    victim = max(members, key=lambda m: m["name"])
    make_leader(c, int(victim["id"], 16))
    stays = [c[c._n_of(m)] for m in members if m is not victim]

    writes: list[float] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            if any(c._try_put(d, f"w{i}", "x", c.context) for d in stays):
                writes.append(time.monotonic())
            i += 1
            time.sleep(0.05)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        c.configure(2, VERSION)
        after = c.wait_members(2)
        time.sleep(1)
    finally:
        stop.set()
        thread.join()
    assert victim["name"] not in {m["name"] for m in after}

    logs = c.logs()
    moved = f"moved etcd's leadership from {victim['name']}"
    assert moved in logs, logs
    assert logs.index(moved) < logs.index(f"removed member {victim['name']}")
    gap = max(b - a for a, b in itertools.pairwise(writes))
    print(f"longest gap between acknowledged writes during the shrink: {gap:.2f}s")
    assert gap < 2.0, "no election without a leader"
