"""The original's membership scenarios, with real daemons and real etcd on 127.X.Y.n."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

import pytest
from harness import Cluster, Daemon, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"


@pytest.fixture(autouse=True)
def _need_etcd() -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")


def leader(c: Cluster) -> Daemon:
    """The lowest peer id among running daemons leads."""
    return min(c.running_daemons(), key=lambda d: d.peer_id())


def test_expansion_ha_and_leader_failover(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(3)
    c.configure(3, VERSION)
    c.start(1, 2)
    c.wait_members(2, on=[1, 2])  # a quorum of the spec is enough to create
    c.put("hello", "world")
    c.start(3)
    c.wait_members(3)  # the third daemon joins the running cluster
    assert all(c.get("hello", n) == "world" for n in (1, 2, 3))

    old = leader(c)
    old.kill9()
    rest = [d for d in c.daemons if d is not old]
    new = leader(c)
    wait_for("a new leader to act", lambda: "taking leadership" in new.log(), timeout=20)
    c.put("after", "failover", n=rest[0].n)
    assert c.get("after", rest[1].n) == "failover"
    old.start()
    c.wait_members(3)
    assert c.get("after", old.n) == "failover"


def test_only_one_cluster_then_resize_up_and_down_without_restarts(
    make_cluster: Callable[..., Cluster],
) -> None:
    c = make_cluster(3)
    c.configure(1, VERSION)
    c.start(1, 2)
    members = c.wait_members(1)
    time.sleep(3)
    assert len(c.members() or []) == 1
    runs_etcd = [d for d in c.daemons[:2] if (d.data_dir / "state").exists()]
    assert len(runs_etcd) == 1, "exactly one daemon runs etcd for a spec of 1"
    c.put("k", "v")

    c.start(3)
    c.configure(3, VERSION)
    c.wait_members(3)
    assert all(c.get("k", n) == "v" for n in (1, 2, 3))

    c.configure(1, VERSION)
    members = c.wait_members(1)
    survivor = c._n_of(members[0])
    assert c.get("k", survivor) == "v"
    for d in c.daemons:
        if d.n != survivor:
            wait_for(
                f"daemon {d.n} to leave etcd", lambda d=d: not (d.data_dir / "state").exists(), timeout=30
            )
            assert list((d.data_dir / "data-trashcan").iterdir()), "old data is moved aside, not deleted"


def test_ha_recovery_and_empty_disk_replacement(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(3)
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    c.put("hello", "world")

    c.stop_all()
    c.start(1, 2)
    wait_for("a quorum read on two of three", lambda: c.get("hello", 1) == "world", timeout=60)

    # Node 3 comes back with an empty disk under its old id: its stale member is replaced.
    keep_id = c[3].peer_id()
    shutil.rmtree(c[3].data_dir)
    c[3].data_dir.mkdir(parents=True)
    (c[3].data_dir / "myid").write_text(keep_id)
    started = time.monotonic()
    c.start(3)
    c.wait_members(3, timeout=60)
    assert c.get("hello", 3) == "world"
    print(f"empty-disk replacement: {time.monotonic() - started:.1f}s to three healthy members")


def test_a_wiped_host_rejoins_under_a_new_id(make_cluster: Callable[..., Cluster]) -> None:
    # The walkthrough's "removing the data for one at a time": the whole data dir, id included.
    c = make_cluster(3, extra_args=["--replace-after=3s"])
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    c.put("hello", "world")
    old_id = c[2].peer_id()
    c[2].stop()
    shutil.rmtree(c[2].data_dir)
    c.start(2)
    members = c.wait_members(3, timeout=90)
    assert old_id not in {m["name"] for m in members}
    assert c[2].peer_id() in {m["name"] for m in members}
    assert c.get("hello", 2) == "world"
