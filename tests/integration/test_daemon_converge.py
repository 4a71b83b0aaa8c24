"""Creation and growth at etcd's own pace, against three daemons: a new cluster is never
quarantined (each member's etcd starts once, serving), a learner is promoted by the action that
added it, and a restored cluster's quarantine is lifted on every member at once."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from harness import Cluster, Daemon, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.5.30"  # learners


def member_starts(d: Daemon) -> int:
    """How often this daemon started its member's etcd (restore drills start a scratch one)."""
    return len(re.findall(r"started etcd \S+ pid \d+ name=(?!scratch)", d.log()))


def leader(c: Cluster) -> Daemon:
    return next(d for d in c.daemons if "taking leadership" in d.log())


def test_create_grow_and_restore_converge_without_extra_restarts(make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(3)
    c.start()
    wait_for("a leader", lambda: any("must seed new cluster" in d.log() for d in c.daemons), timeout=30)

    c.configure(1, VERSION)
    members = c.wait_members(1, timeout=60)
    c.put("kept", "in the backup")
    (first,) = [d for d in c.daemons if d.peer_id() == members[0]["name"]]
    assert member_starts(first) == 1, "a new cluster's member starts once: no quarantine to lift"
    assert not any("(quarantined)" in d.log() or "LiftQuarantine" in d.log() for d in c.daemons)

    started = time.monotonic()
    c.configure(3, VERSION)
    c.wait_members(3, timeout=60)
    print(f"grow 1 -> 3 took {time.monotonic() - started:.1f}s")
    # etcd lists the second voter a moment before the leader logs its promotion.
    wait_for(
        "both learners promoted by the leader",
        lambda: "".join(d.log() for d in c.daemons).count("to a voting member") == 2,
        timeout=10,
    )
    logs = "".join(d.log() for d in c.daemons)
    assert logs.count("promoted ") == 2
    # Each learner was promoted by the add that started it, not a cycle later by the rule.
    assert "decision: PromoteMember" not in logs
    assert all(member_starts(d) == 1 for d in c.daemons)

    name = c.ctl("backup-now", "--wait", "--timeout=60s").stdout.strip()
    c.put("lost", "written after the backup")
    started = time.monotonic()
    c.ctl("restore-backup", name, "--wait", "--timeout=3m")
    c.wait_members(3, timeout=60)
    print(f"restore-backup took {time.monotonic() - started:.1f}s")
    lifts = [line for line in leader(c).log().splitlines() if "decision: LiftQuarantine" in line]
    assert len(lifts) == 1, lifts
    assert "at once" in lifts[0] and all(d.peer_id() in lifts[0] for d in c.daemons)
    assert c.get("kept", 1) == "in the backup"
    assert c.get("lost", 2) is None
