"""A host that comes back wiped, under a new id, at the address of a member that has no daemon:
that member is replaced at once, not after --replace-after."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from etcdmgr.controller import actions as a
from etcdmgr.controller.plan import plan
from etcdmgr.controller.view import ClusterView
from etcdmgr.model import PeerInfo

from .test_plan import member, node, peer, view
from .test_plan_properties import (
    GONE,
    a_remove_leaves_a_healthy_quorum_of_the_voters_left,
    an_add_only_with_a_healthy_quorum_of_voters,
    chance,
    decides,
    never_a_second_cluster,
    views,
)
from .test_plan_properties import node as drawn_node


def at_address_of(old: str, new_id: str, *, https: bool = False) -> PeerInfo:
    """An empty node with a new id, serving the peer URLs the member `old` was registered with."""
    urls = node(old).peer_urls
    if https:
        urls = tuple(u.replace("http://", "https://") for u in urls)
    info = peer(new_id)
    return replace(info, node=replace(info.node, name=new_id, peer_urls=urls))


MEMBERS = [member("peer-a"), member("peer-b"), member("peer-c", healthy=False, unhealthy_for=1)]
RUNNING = [peer("peer-a", member=True), peer("peer-b", member=True)]


def test_a_wiped_host_under_a_new_id_replaces_its_member_at_once() -> None:
    d = plan(view(3, peers=[*RUNNING, at_address_of("peer-c", "peer-x")], members=MEMBERS, replace_after=60))
    assert d.action == a.RemoveMember(MEMBERS[2].member_id, "peer-c", None, backup_first=True)
    assert "peer-x answers at its address 127.0.0.3:2380" in d.reason
    assert "came back under a new id" in d.reason
    # Once the member is gone, the add rule brings the new node in.
    after = plan(view(3, peers=[*RUNNING, at_address_of("peer-c", "peer-x")], members=MEMBERS[:2]))
    assert after.action == a.AddMember("peer-x", learner=True, backup_first=True)


def test_the_address_matches_whatever_the_scheme() -> None:
    peers = [*RUNNING, at_address_of("peer-c", "peer-x", https=True)]
    d = plan(view(3, peers=peers, members=MEMBERS, replace_after=60))
    assert isinstance(d.action, a.RemoveMember) and d.action.name == "peer-c"


def test_a_new_node_elsewhere_waits_for_replace_after() -> None:
    # peer-d has its own address: peer-c's host may still come back, so its member is kept.
    d = plan(view(3, peers=[*RUNNING, peer("peer-d")], members=MEMBERS, replace_after=60))
    assert d.action == a.Wait()


def test_a_healthy_member_is_never_taken_for_a_returned_host() -> None:
    members = [member("peer-a"), member("peer-b"), member("peer-c")]
    d = plan(view(3, peers=[*RUNNING, at_address_of("peer-c", "peer-x")], members=members))
    assert not isinstance(d.action, a.RemoveMember)


def test_a_member_whose_daemon_answers_is_not_replaced_by_an_address() -> None:
    # Its own daemon speaks for it (an empty disk under the old id has a rule of its own).
    peers = [*RUNNING, peer("peer-c", member=True), at_address_of("peer-c", "peer-x")]
    d = plan(view(3, peers=peers, members=MEMBERS, replace_after=60))
    assert not isinstance(d.action, a.RemoveMember)


def test_quorum_still_decides() -> None:
    # Two of three hosts gone: removing one would leave one healthy member of two.
    members = [member("peer-a"), member("peer-b", healthy=False), member("peer-c", healthy=False)]
    peers = [peer("peer-a", member=True), at_address_of("peer-c", "peer-x")]
    d = plan(view(3, peers=peers, members=members, replace_after=60))
    assert d.action == a.Wait()
    assert "would leave 1 healthy of 2" in d.reason


def test_a_node_whose_etcd_fails_or_whose_state_is_unreadable_is_not_taken_as_empty() -> None:
    for problem in ({"etcd_problem": "exit 1"}, {"state_problem": "state file unreadable"}):
        returned = replace(at_address_of("peer-c", "peer-x"), **problem)
        d = plan(view(3, peers=[*RUNNING, returned], members=MEMBERS, replace_after=60))
        assert d.action == a.Wait(), problem


def test_a_node_without_the_members_version_is_not_taken_either() -> None:
    returned = replace(at_address_of("peer-c", "peer-x"), installed_versions=("3.5.30",))
    d = plan(view(3, peers=[*RUNNING, returned], members=MEMBERS, replace_after=60))
    assert d.action == a.Wait()


@st.composite
def views_with_returned_hosts(draw: st.DrawFn) -> ClusterView:
    """`views()`, where some hosts that are gone came back empty under a new id at their address."""
    v = draw(views())
    peers = dict(v.peers)
    for i, gone in enumerate(GONE):
        if draw(chance(2, 3)):
            new_id = f"peer-new{i}"
            n = replace(drawn_node(gone, draw(chance(1, 4))), name=new_id)
            installed = v.spec.etcd_version if v.spec else "3.4.23"
            peers[new_id] = PeerInfo(new_id, "test", n, None, False, (installed,))
    return replace(v, peers=peers)


@settings(max_examples=500, deadline=None)
@given(views_with_returned_hosts())
def test_returned_hosts_keep_the_planners_promises(v: ClusterView) -> None:
    d = decides(v)
    a_remove_leaves_a_healthy_quorum_of_the_voters_left(v, d)
    never_a_second_cluster(v, d)
    an_add_only_with_a_healthy_quorum_of_voters(v, d)
    if isinstance(d.action, a.RemoveMember) and "came back under a new id" in d.reason:
        assert v.members is not None
        removed = next(m for m in v.members if m.member_id == d.action.member_id)
        assert not removed.healthy and removed.name not in v.peers and d.action.stop_peer is None
