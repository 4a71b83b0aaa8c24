"""A leader asks for a restore (no members, no etcd state) only when a quorum of the spec's
peers told it so. Found by the nemesis soak (seed 6): a node cut off from its peers, and from its
own peer API, led alone, heard from nobody, and logged `etcd has 0 members registered; must issue
restore-backup command to proceed` while the cluster served on the other two nodes."""

from __future__ import annotations

from etcdmgr.controller import actions as a
from etcdmgr.controller.plan import ZERO_MEMBERS, plan

from .test_plan import peer, view


def test_a_leader_that_hears_nobody_does_not_ask_for_a_restore() -> None:
    d = plan(view(3, peers=[], members_problem="context deadline exceeded"))
    assert d.action == a.Wait() and d.reason != ZERO_MEMBERS
    assert "cannot list etcd members" in d.reason


def test_an_empty_node_cut_off_from_the_others_does_not_ask_for_a_restore() -> None:
    d = plan(view(3, peers=[peer("peer-a")], members_problem="context deadline exceeded"))
    assert d.action == a.Wait() and d.reason != ZERO_MEMBERS


def test_a_quorum_without_etcd_state_asks_for_a_restore() -> None:
    d = plan(view(3, peers=[peer("peer-a"), peer("peer-b")]))
    assert d.action == a.Wait() and d.reason == ZERO_MEMBERS
