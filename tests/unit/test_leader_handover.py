"""Before etcd's leader is removed (a shrink), its leadership moves to a member that stays: a
removed leader costs an etcd election, 2-3 s in which no write succeeds (found by the soak). The
member it moves to is a healthy voting member that stays, the same whichever daemon leads."""

from __future__ import annotations

from etcdmgr.controller.facts import leader_successor

from .test_plan import member


def test_leadership_goes_to_the_lowest_healthy_voting_member_that_stays() -> None:
    members = [member("peer-c"), member("peer-b"), member("peer-a")]
    successor = leader_successor(members, members[2].member_id)
    assert successor is not None and successor.name == "peer-b"


def test_never_to_an_unhealthy_member_a_learner_or_one_not_started() -> None:
    leaving = member("peer-a")
    others = [
        member("peer-b", healthy=False),
        member("peer-c", learner=True),
        member("peer-d", started=False),
    ]
    assert leader_successor([leaving, *others], leaving.member_id) is None
    successor = leader_successor([leaving, *others, member("peer-e")], leaving.member_id)
    assert successor is not None and successor.name == "peer-e"
