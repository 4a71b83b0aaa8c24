"""Lifting quarantine: all members at once while no client uses the cluster, else one at a time
and only while the others keep quorum."""

from __future__ import annotations

from hypothesis import given, settings

from etcdmgr.controller import actions as a
from etcdmgr.controller.plan import plan, quorum
from etcdmgr.controller.view import ClusterView
from tests.unit.test_plan import member, peer, view
from tests.unit.test_plan_properties import views


def test_a_restored_cluster_is_lifted_on_every_member_at_once() -> None:
    peers = [peer(p, member=True, quarantined=True) for p in ("peer-a", "peer-b", "peer-c")]
    d = plan(view(3, peers=peers, members=[member("peer-a"), member("peer-b"), member("peer-c")]))
    assert d.action == a.LiftQuarantine(("peer-a", "peer-b", "peer-c"))
    assert "at once" in d.reason


def test_a_quarantined_cluster_without_a_healthy_quorum_waits() -> None:
    peers = [peer(p, member=True, quarantined=True) for p in ("peer-a", "peer-b", "peer-c")]
    members = [member("peer-a"), member("peer-b", healthy=False), member("peer-c", healthy=False)]
    d = plan(view(3, peers=peers, members=members))
    assert d.action == a.Wait() and "not healthy yet: 1 of 3" in d.reason


def test_while_clients_use_the_cluster_one_member_is_lifted_and_the_others_keep_quorum() -> None:
    # A lift cut short: peer-a serves clients again, peer-b and peer-c are still quarantined.
    peers = [peer("peer-a", member=True), *(peer(p, member=True, quarantined=True) for p in ("peer-b", "peer-c"))]
    d = plan(view(3, peers=peers, members=[member("peer-a"), member("peer-b"), member("peer-c")]))
    assert d.action == a.LiftQuarantine(("peer-b",))
    assert "one at a time" in d.reason


def test_while_clients_use_the_cluster_no_lift_takes_their_quorum_away() -> None:
    # peer-a is restarting (just lifted): restarting peer-b now would leave one of three.
    peers = [peer("peer-a", member=True), *(peer(p, member=True, quarantined=True) for p in ("peer-b", "peer-c"))]
    members = [member("peer-a", healthy=False), member("peer-b"), member("peer-c")]
    d = plan(view(3, peers=peers, members=members))
    assert d.action == a.Wait()
    assert "once the others keep quorum without it: 1 of 3 healthy" in d.reason


def test_a_new_cluster_is_created_without_quarantine_so_nothing_is_lifted() -> None:
    # Created and serving: the members run unquarantined from their first start.
    peers = [peer(p, member=True) for p in ("peer-a", "peer-b", "peer-c")]
    d = plan(view(3, peers=peers, members=[member("peer-a"), member("peer-b"), member("peer-c")]))
    assert not isinstance(d.action, a.LiftQuarantine)


def a_lift_keeps_quorum_for_the_clients(v: ClusterView, d: a.Decision) -> None:
    """Several members restart together only while none serves clients; one restarts while
    others do only if the healthy voters besides it keep quorum."""
    if not isinstance(d.action, a.LiftQuarantine):
        return
    with_state = {pid: info for pid, info in v.peers.items() if info.etcd_state is not None}
    serving = [pid for pid, info in with_state.items() if info.etcd_state and not info.etcd_state.quarantined]
    if not serving:
        return
    assert len(d.action.peer_ids) == 1, d
    (pid,) = d.action.peer_ids
    voting = [m for m in v.members or () if not m.is_learner]
    others = [m for m in voting if m.healthy and m.name != pid]
    assert len(others) >= quorum(len(voting)), d


@settings(max_examples=600, deadline=None)
@given(views())
def test_every_lift_keeps_quorum_for_the_clients(v: ClusterView) -> None:
    a_lift_keeps_quorum_for_the_clients(v, plan(v))
