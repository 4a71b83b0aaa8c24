"""A learner etcd will not promote yet (not in sync with the leader) is retried with backoff, not
at every cycle, and one that stays unpromotable for replace-after is removed, so that its node
joins again afresh (found by the soak: the leader retried at full speed, for good)."""

from __future__ import annotations

from dataclasses import replace

from etcdmgr.controller import actions as a
from etcdmgr.controller.actions import Decision
from etcdmgr.controller.backoff import Promotions
from etcdmgr.controller.plan import plan
from etcdmgr.controller.view import MemberView, Promotion

from .test_plan import member, peer, view

NOT_IN_SYNC = "etcdserver: can only promote a learner member which is in sync with leader"


def learner_cluster(promotion: Promotion, **kw: object) -> tuple[list[MemberView], Decision]:
    """Two voting members and learner peer-c, whose promotion went as `promotion` says."""
    peers = [peer(p, member=True) for p in ("peer-a", "peer-b", "peer-c")]
    members = [member("peer-a"), member("peer-b"), replace(member("peer-c", learner=True), promotion=promotion)]
    return members, plan(view(3, peers=peers, members=members, replace_after=60.0, **kw))


def test_a_learner_that_never_failed_is_promoted_at_once() -> None:
    members, d = learner_cluster(Promotion())
    assert d.action == a.PromoteMember(members[2].member_id, "peer-c")


def test_a_refused_promotion_waits_for_its_retry_and_says_when() -> None:
    _, d = learner_cluster(Promotion(failing_for=3.0, retry_in=4.0, error=NOT_IN_SYNC))
    assert d.action == a.Wait()
    assert "learner peer-c not promoted yet" in d.reason and "next try in 4s" in d.reason
    assert "in sync with leader" in d.reason


def test_once_the_pause_is_over_the_promotion_is_tried_again() -> None:
    members, d = learner_cluster(Promotion(failing_for=10.0, retry_in=0.0, error=NOT_IN_SYNC))
    assert d.action == a.PromoteMember(members[2].member_id, "peer-c")


def test_a_learner_unpromotable_for_replace_after_is_removed_and_its_etcd_stopped() -> None:
    members, d = learner_cluster(Promotion(failing_for=61.0, retry_in=2.0, error=NOT_IN_SYNC))
    assert isinstance(d.action, a.RemoveMember)
    assert (d.action.member_id, d.action.name, d.action.stop_peer) == (members[2].member_id, "peer-c", "peer-c")
    assert "learner peer-c could not be promoted for 61s" in d.reason
    assert NOT_IN_SYNC in d.reason and "joins again" in d.reason


def test_waiting_for_a_learner_does_not_hold_up_a_due_backup() -> None:
    _, d = learner_cluster(Promotion(failing_for=3.0, retry_in=4.0, error=NOT_IN_SYNC), backup_due=True)
    assert isinstance(d.action, a.TakeBackup)


def test_promotions_back_off_exponentially_up_to_the_cap_and_are_forgotten_once_done() -> None:
    p = Promotions(base=1.0, cap=10.0)
    delays = [p.failed(7, NOT_IN_SYNC, now=100.0 + i) for i in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    seen = p.of(7, now=106.0)
    assert seen == Promotion(failing_for=6.0, retry_in=9.0, error=NOT_IN_SYNC)
    p.forget_all_but(set())  # promoted (or removed): no learner any more
    assert p.of(7, now=107.0) == Promotion()


def test_a_learner_that_never_started_is_removed_with_the_etcd_of_the_node_it_was_added_for() -> None:
    """Its etcd hung before it published its name: its node is the one serving its peer URLs."""
    peers = [peer(p, member=True) for p in ("peer-a", "peer-b", "peer-c")]
    stuck = replace(
        member("peer-c", learner=True, started=False, healthy=False),
        promotion=Promotion(failing_for=61.0, retry_in=2.0, error=NOT_IN_SYNC),
    )
    d = plan(view(3, peers=peers, members=[member("peer-a"), member("peer-b"), stuck], replace_after=60.0))
    assert d.action == a.RemoveMember(stuck.member_id, "", "peer-c")
    assert f"learner {stuck.member_id:x} could not be promoted" in d.reason
