"""The leader and a crash-looping member: replaced like a dead one after --replace-after when a
spare peer waits; and a spare that lacks the members' etcd version is never the one added."""

from __future__ import annotations

from etcdmgr.controller import actions as a
from etcdmgr.controller.plan import plan
from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.model import ClusterSpec, EtcdCluster, EtcdNode, EtcdState, PeerInfo

V = "3.5.30"
TOKEN = "_x0-abcd"
CRASHING = (
    "etcd failed to start 7 times in a row since 2030-01-01T00:00:00Z; last: exit 1: bind: address in use"
)


def node(pid: str) -> EtcdNode:
    n = ord(pid[-1]) - ord("a") + 1
    return EtcdNode(
        name=pid, peer_urls=(f"http://127.0.0.{n}:2380",), client_urls=(f"http://127.0.0.{n}:4001",)
    )


def peer(
    pid: str, *, member: bool = True, installed: tuple[str, ...] = (V,), problem: str | None = None
) -> PeerInfo:
    state = EtcdState(EtcdCluster(TOKEN, (node(pid),)), V) if member else None
    return PeerInfo(
        pid, "test", node(pid), state, member and problem is None, installed, etcd_problem=problem
    )


def member(pid: str, *, healthy: bool = True, unhealthy_for: float = 0.0) -> MemberView:
    n = node(pid)
    return MemberView(
        1000 + ord(pid[-1]), pid, n.peer_urls, n.client_urls, healthy, unhealthy_for=unhealthy_for
    )


def view(peers: list[PeerInfo], members: list[MemberView], count: int = 3) -> ClusterView:
    return ClusterView(
        spec=ClusterSpec(count, V),
        created=True,
        peers={p.peer_id: p for p in peers},
        members=tuple(members),
        replace_after=60.0,
    )


def test_a_member_whose_etcd_keeps_failing_is_replaced_after_replace_after_when_a_spare_waits() -> None:
    crashing = peer("c", problem=CRASHING)
    spare = peer("d", member=False)
    members = [member("a"), member("b")]

    early = plan(
        view(
            [peer("a"), peer("b"), crashing, spare], [*members, member("c", healthy=False, unhealthy_for=30)]
        )
    )
    assert isinstance(early.action, a.Wait), "not before --replace-after"

    late = plan(
        view(
            [peer("a"), peer("b"), crashing, spare], [*members, member("c", healthy=False, unhealthy_for=61)]
        )
    )
    assert late.action == a.RemoveMember(1000 + ord("c"), "c", "c"), "removed, and its node told to stop etcd"
    assert f"its etcd failing ({CRASHING})" in late.reason
    assert "idle peer d can replace it" in late.reason

    # Without a spare it stays: a member that may come back is better than none.
    alone = plan(
        view([peer("a"), peer("b"), crashing], [*members, member("c", healthy=False, unhealthy_for=61)])
    )
    assert isinstance(alone.action, a.Wait)

    # A node that answers without a problem is slow or partitioned, not crash-looping: it waits.
    quiet = plan(
        view(
            [peer("a"), peer("b"), peer("c"), spare], [*members, member("c", healthy=False, unhealthy_for=61)]
        )
    )
    assert isinstance(quiet.action, a.Wait)

    # Quorum still rules: with a second member down, nothing is removed.
    down = plan(
        view(
            [peer("a"), peer("b", problem=CRASHING), crashing, spare],
            [
                member("a"),
                member("b", healthy=False, unhealthy_for=61),
                member("c", healthy=False, unhealthy_for=61),
            ],
        )
    )
    assert not isinstance(down.action, a.RemoveMember)


def test_a_spare_without_the_members_version_is_neither_added_nor_a_reason_to_replace() -> None:
    old_only = peer("d", member=False, installed=("3.3.25",))
    crashing = peer("c", problem=CRASHING)
    two = [member("a"), member("b")]

    short = plan(view([peer("a"), peer("b"), old_only], two))
    assert isinstance(short.action, a.Wait)
    assert "no idle peer to add (idle peers without the members' etcd version: d)" in short.reason

    added = plan(view([peer("a"), peer("b"), old_only, peer("e", member=False)], two))
    assert added.action == a.AddMember("e", True), "the lowest peer that has the version"

    # A patch release of the same minor serves: such a peer is added.
    patch = plan(view([peer("a"), peer("b"), peer("d", member=False, installed=("3.5.16",))], two))
    assert patch.action == a.AddMember("d", True)

    stays = plan(
        view([peer("a"), peer("b"), crashing, old_only], [*two, member("c", healthy=False, unhealthy_for=61)])
    )
    assert not isinstance(stays.action, a.RemoveMember), "no spare could take its place"


def test_get_info_sends_etcd_problem_only_while_there_is_one() -> None:
    """An optional field: an earlier release neither sends it nor minds its absence."""
    running = peer("c")
    assert "etcdProblem" not in running.to_wire()
    assert PeerInfo.from_wire(running.to_wire()) == running
    crashing = peer("c", problem=CRASHING)
    assert crashing.to_wire()["etcdProblem"] == CRASHING
    assert PeerInfo.from_wire(crashing.to_wire()) == crashing


def test_the_removed_node_is_a_spare_of_last_resort() -> None:
    """Told to stop, a crash-looping node is idle and still reports its last etcd's failure: a
    spare without one is added first, and it never counts as the spare that allows a replacement."""
    c_idle = peer("c", member=False, problem=CRASHING)
    two = [member("a"), member("b")]

    added = plan(view([peer("a"), peer("b"), c_idle, peer("d", member=False)], two))
    assert added.action == a.AddMember("d", True), "d, although c is the lower id"
    last_resort = plan(view([peer("a"), peer("b"), c_idle], two))
    assert last_resort.action == a.AddMember("c", True), "better than staying short"

    members = [member("a"), member("b", healthy=False, unhealthy_for=99), member("c")]
    peers = [peer("a"), peer("b", problem=CRASHING), peer("c"), peer("e", member=False, problem=CRASHING)]
    assert not isinstance(plan(view(peers, members)).action, a.RemoveMember)
