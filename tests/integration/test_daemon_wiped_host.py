"""A host wiped and restarted (new peer id, same address) takes its old member's place at once,
while a host that has not come back keeps its member for --replace-after."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

import pytest
from harness import Cluster

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"
# Far beyond what the replacement should take: the member must not wait for it.
REPLACE_AFTER = 120


@pytest.fixture(autouse=True)
def _need_etcd() -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")


def test_a_wiped_host_under_a_new_id_replaces_its_member_without_waiting(
    make_cluster: Callable[..., Cluster],
) -> None:
    c = make_cluster(3, extra_args=[f"--replace-after={REPLACE_AFTER}s"])
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    c.put("hello", "world")
    wiped = max(c.daemons, key=lambda d: d.peer_id())  # never the leader (the lowest id)
    old_id = wiped.peer_id()

    wiped.stop()
    shutil.rmtree(wiped.data_dir)
    # Gone and not back: its member is kept (its host may return with its data).
    time.sleep(6)
    assert old_id in {m["name"] for m in c.members() or []}

    started = time.monotonic()
    c.start(wiped.n)
    members = c.wait_members(3, timeout=REPLACE_AFTER / 2)
    took = time.monotonic() - started
    names = {m["name"] for m in members}
    assert old_id not in names and wiped.peer_id() in names
    assert c.get("hello", wiped.n) == "world"
    # Its new id may be the lowest: then the wiped host itself leads and replaces its old member.
    leader_log = "\n".join(d.log() for d in c.daemons)
    assert f"member {old_id} has no daemon and peer {wiped.peer_id()} answers at its address" in leader_log
    print(f"wiped host back under a new id: {took:.1f}s to three healthy members")
