"""`ctl backup-now`: a request in the store makes the leader back up within a cycle, as soon as
a voting member is healthy, and the action names the requests it answers."""

from __future__ import annotations

from etcdmgr.controller import actions as a
from etcdmgr.controller.plan import plan

from .test_plan import member, peer, view

PEERS = ["peer-a", "peer-b", "peer-c"]
REQUESTS = ("2026-01-02T12:00:00Z-000000", "2026-01-02T12:00:01Z-000000")


def test_a_request_takes_a_backup_before_the_interval_is_up() -> None:
    d = plan(
        view(
            3,
            peers=[peer(p, member=True) for p in PEERS],
            members=[member(p) for p in PEERS],
            backup_requests=REQUESTS,
        )
    )
    assert d.action == a.TakeBackup(REQUESTS)
    assert d.reason == "backup requested (ctl backup-now)"


def test_the_interval_alone_answers_no_request() -> None:
    d = plan(
        view(
            3,
            peers=[peer(p, member=True) for p in PEERS],
            members=[member(p) for p in PEERS],
            backup_due=True,
        )
    )
    assert d.action == a.TakeBackup(()) and d.reason == "backup interval elapsed"


def test_a_request_waits_for_a_healthy_voting_member() -> None:
    members = [member(p, healthy=False) for p in PEERS]
    d = plan(view(3, peers=[peer(p, member=True) for p in PEERS], members=members, backup_requests=REQUESTS))
    assert not d.mutates
