"""Properties of the planner over random views: it always decides, and never breaks quorum.

`views()` draws what a leader could see: up to five peers (with or without etcd state, on http
or https peer URLs, with some etcd versions installed), a member list (members of those peers or
of hosts that are gone, healthy or not, learners, added but not started), a spec, the created
marker and a command queue.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from etcdmgr.controller import actions as a
from etcdmgr.controller.plan import COULD_NOT_DECIDE, plan, quorum
from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.model import ClusterSpec, EtcdCluster, EtcdNode, EtcdState, PeerInfo
from etcdmgr.model.command import Command, RestoreBackup

IDS = ("peer-a", "peer-b", "peer-c", "peer-d", "peer-e")
GONE = ("peer-y", "peer-z")  # hosts with a member but no daemon
GOOD = ("3.3.25", "3.4.23", "3.4.99", "3.5.30", "3.6.0")
BAD = ("", "garbage", "3.4", "3.4.23.1")


def node(pid: str, https: bool) -> EtcdNode:
    n = (IDS + GONE).index(pid) + 1
    return EtcdNode(
        name=pid,
        peer_urls=(f"{'https' if https else 'http'}://127.0.0.{n}:2380",),
        client_urls=(f"http://127.0.0.{n}:4001",),
        quarantined_client_urls=(f"http://127.0.0.{n}:8001",),
    )


# What a host is to the cluster: a member, idle, running etcd though no member (orphan), a member
# whose node lost its data (wiped), or added to etcd and not started yet.
KINDS = st.sampled_from(["member"] * 5 + ["idle"] * 2 + ["orphan", "wiped", "added"])
# Keyed by `valid` (see views()); built once, since building strategies is slow.
VERSIONS = {True: st.sampled_from(GOOD), False: st.sampled_from(GOOD * 3 + BAD)}
COUNTS = {True: st.integers(1, 5), False: st.sampled_from([*range(1, 6)] * 3 + [0, -1])}
UNHEALTHY_FOR = st.sampled_from([0.0, 30.0, 61.0, 3600.0])
HOSTS = st.lists(st.sampled_from(IDS), unique=True, max_size=len(IDS))
GONE_HOSTS = st.lists(st.sampled_from(GONE), unique=True, max_size=2)
COMMANDS = {
    valid: st.lists(
        st.builds(
            Command,
            st.just("2026-01-01T00:00:00Z-000000"),
            st.just(1),
            st.none()
            | st.builds(
                RestoreBackup,
                st.builds(ClusterSpec, COUNTS[valid], VERSIONS[valid]),
                st.sampled_from(["b1", ""]),
            ),
        ),
        min_size=1,
        max_size=2,
    )
    for valid in (True, False)
}


@cache  # one strategy per odds
def chance(n: int, d: int) -> st.SearchStrategy[bool]:
    """True about n times in d (False first: hypothesis favours and shrinks towards the first)."""
    return st.sampled_from([False] * (d - n) + [True] * n)


@st.composite
def member(draw: st.DrawFn, name: str, member_id: int, started: bool = True) -> MemberView:
    healthy = started and draw(chance(3, 4))
    return MemberView(
        member_id=member_id,
        name=name if started else "",
        peer_urls=node(name, draw(chance(1, 12))).peer_urls,
        client_urls=node(name, False).client_urls if started else (),
        healthy=healthy,
        is_learner=draw(chance(1, 16)),
        unhealthy_for=0.0 if healthy else draw(UNHEALTHY_FOR),
    )


@st.composite
def views(draw: st.DrawFn, valid: bool = True) -> ClusterView:
    """Well-typed views; with `valid`, every version and count one a correct peer would send, and
    member names unique."""
    versions = VERSIONS[valid]
    fresh = draw(chance(1, 6))  # no cluster yet: every host idle
    wanted = draw(versions)
    peers: dict[str, PeerInfo] = {}
    members: list[MemberView] = []
    for pid in draw(HOSTS):
        kind = "idle" if fresh else draw(KINDS)
        n = node(pid, draw(chance(1, 12)))
        state = None
        if kind in ("member", "orphan"):
            running = wanted if draw(chance(3, 4)) else draw(versions)
            state = EtcdState(EtcdCluster("tok", (n,)), running, quarantined=draw(chance(1, 16)))
        installed = {draw(versions) for _ in range(draw(st.integers(0, 2)))}
        installed |= {wanted} if draw(chance(4, 5)) else set()
        peers[pid] = PeerInfo(pid, "test", n, state, state is not None, tuple(sorted(installed)))
        if kind in ("member", "wiped", "added"):
            members.append(draw(member(pid, 1000 + len(members), started=kind != "added")))
    for name in () if fresh else draw(GONE_HOSTS):
        members.append(draw(member(name, 1000 + len(members))))
    if not valid and members and draw(chance(1, 4)):
        members.append(draw(member(members[0].name or IDS[0], 1000 + len(members))))
    return ClusterView(
        spec=None if draw(chance(1, 10)) else ClusterSpec(draw(COUNTS[valid]), wanted),
        created=not fresh and draw(chance(5, 6)),
        peers=peers,
        members=None if fresh or draw(chance(1, 8)) else tuple(members),
        commands=tuple(draw(COMMANDS[valid])) if draw(chance(1, 5)) else (),
        backup_due=draw(chance(1, 4)),
        replace_after=draw(st.sampled_from([0.0, 60.0])),
    )


def decides(v: ClusterView) -> a.Decision:
    d = plan(v)
    assert isinstance(d, a.Decision) and d.reason
    assert not d.reason.startswith(COULD_NOT_DECIDE), d.reason  # a rule decided, not the last resort
    return d


def a_remove_leaves_a_healthy_quorum_of_the_voters_left(v: ClusterView, d: a.Decision) -> None:
    if isinstance(d.action, a.RemoveMember):
        assert v.members is not None
        left = [m for m in v.members if not m.is_learner and m.member_id != d.action.member_id]
        assert left and len([m for m in left if m.healthy]) >= quorum(len(left))


def never_a_second_cluster(v: ClusterView, d: a.Decision) -> None:
    if isinstance(d.action, a.CreateCluster):
        assert v.spec is not None
        assert not v.created and not v.members
        assert not any(info.etcd_state for info in v.peers.values())
        assert set(d.action.peer_ids) <= set(v.peers)
        assert quorum(v.spec.member_count) <= len(d.action.peer_ids) <= v.spec.member_count


def an_add_only_with_a_healthy_quorum_of_voters(v: ClusterView, d: a.Decision) -> None:
    if isinstance(d.action, a.AddMember):
        assert v.members is not None
        voting = [m for m in v.members if not m.is_learner]
        assert len([m for m in voting if m.healthy]) >= quorum(len(voting))
        added = v.peers[d.action.peer_id]
        assert added.etcd_state is None and d.action.peer_id not in {m.name for m in v.members}


@settings(max_examples=600, deadline=None)
@given(views())
def test_every_view_is_decided_by_a_rule_that_keeps_quorum(v: ClusterView) -> None:
    d = decides(v)
    a_remove_leaves_a_healthy_quorum_of_the_voters_left(v, d)
    never_a_second_cluster(v, d)
    an_add_only_with_a_healthy_quorum_of_voters(v, d)


@settings(max_examples=300, deadline=None)
@given(views(valid=False))
def test_bad_versions_and_counts_are_decided_by_a_rule_and_change_nothing(v: ClusterView) -> None:
    d = decides(v)
    versions = [v.spec.etcd_version] if v.spec else []
    for info in v.peers.values():
        versions += [*info.installed_versions, *([info.etcd_state.etcd_version] if info.etcd_state else [])]
    if v.spec is None or v.spec.member_count < 1 or set(versions) & set(BAD):
        assert not d.mutates, d


JUNK = st.none() | st.integers() | st.floats() | st.text(max_size=4) | st.lists(st.integers(), max_size=2)


@st.composite
def junk_views(draw: st.DrawFn) -> ClusterView:
    """A view in which one field of one peer, member or the spec holds a value of the wrong type."""
    v = draw(views(valid=False))
    junk: Any = draw(JUNK)
    target = draw(st.sampled_from(["peer", "state", "node", "member", "spec"]))
    if target in ("peer", "state", "node") and v.peers:
        pid = draw(st.sampled_from(sorted(v.peers)))
        info = v.peers[pid]
        if target == "peer":
            info = replace(
                info, **{draw(st.sampled_from(["installed_versions", "etcd_state", "node"])): junk}
            )
        elif target == "state" and info.etcd_state:
            field = draw(st.sampled_from(["etcd_version", "quarantined", "cluster"]))
            info = replace(info, etcd_state=replace(info.etcd_state, **{field: junk}))
        else:
            info = replace(info, node=replace(info.node, peer_urls=junk))
        return replace(v, peers={**v.peers, pid: info})
    if target == "member" and v.members:
        i = draw(st.integers(0, len(v.members) - 1))
        field = draw(
            st.sampled_from(["member_id", "name", "peer_urls", "healthy", "is_learner", "unhealthy_for"])
        )
        changed = replace(v.members[i], **{field: junk})
        return replace(v, members=(*v.members[:i], changed, *v.members[i + 1 :]))
    if v.spec is not None:
        return replace(
            v, spec=replace(v.spec, **{draw(st.sampled_from(["member_count", "etcd_version"])): junk})
        )
    return v


@settings(max_examples=200, deadline=None)
@given(junk_views())
def test_values_of_the_wrong_type_still_give_a_decision(v: ClusterView) -> None:
    d = plan(v)
    assert isinstance(d, a.Decision) and d.reason
