"""The planner's decision table: each case is what the leader saw and what it must decide."""

from __future__ import annotations

import pytest

from etcdmgr.controller import actions as a
from etcdmgr.controller.plan import NO_SPEC, ZERO_MEMBERS, plan, quorum
from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.model import ClusterSpec, EtcdCluster, EtcdNode, EtcdState, PeerInfo
from etcdmgr.model.command import Command, RestoreBackup

V = "3.4.23"
INSTALLED = ("3.3.25", "3.4.23", "3.5.30")


def node(pid: str) -> EtcdNode:
    n = ord(pid[-1]) - ord("a") + 1
    return EtcdNode(
        name=pid,
        peer_urls=(f"http://127.0.0.{n}:2380",),
        client_urls=(f"http://127.0.0.{n}:4001",),
        quarantined_client_urls=(f"http://127.0.0.{n}:8001",),
    )


def peer(
    pid: str,
    *,
    member: bool = False,
    quarantined: bool = False,
    version: str = V,
    installed: tuple[str, ...] = INSTALLED,
) -> PeerInfo:
    state = None
    if member:
        state = EtcdState(
            cluster=EtcdCluster("tok", (node(pid),)), etcd_version=version, quarantined=quarantined
        )
    return PeerInfo(pid, "test", node(pid), state, etcd_running=member, installed_versions=installed)


def member(
    pid: str, *, healthy: bool = True, learner: bool = False, started: bool = True, unhealthy_for: float = 0.0
) -> MemberView:
    n = node(pid)
    return MemberView(
        member_id=1000 + ord(pid[-1]),
        name=pid if started else "",
        peer_urls=n.peer_urls,
        client_urls=n.client_urls if started else (),
        healthy=healthy,
        is_learner=learner,
        unhealthy_for=unhealthy_for,
    )


def view(
    count: int | None = 3,
    *,
    created: bool = True,
    peers: list[PeerInfo] | None = None,
    members: list[MemberView] | None = None,
    **kw: object,
) -> ClusterView:
    spec = ClusterSpec(count, V) if count else None
    return ClusterView(
        spec=spec,
        created=created,
        peers={p.peer_id: p for p in peers or []},
        members=tuple(members) if members is not None else None,
        **kw,  # type: ignore[arg-type]
    )


def test_quorum() -> None:
    assert [quorum(n) for n in range(1, 6)] == [1, 2, 2, 3, 3]


def test_no_spec_waits_with_the_originals_message() -> None:
    d = plan(view(None, created=False, peers=[peer("peer-a")]))
    assert d.action == a.Wait() and d.reason == NO_SPEC


def test_unusable_spec_waits_and_says_why() -> None:
    d = plan(view(None, peers=[peer("peer-a")], spec_problem="cluster spec cannot be used: bad"))
    assert d.action == a.Wait() and "bad" in d.reason


@pytest.mark.parametrize(
    ("count", "peers", "expected"),
    [
        (1, ["peer-a"], a.CreateCluster(("peer-a",), V)),
        (1, ["peer-a", "peer-b"], a.CreateCluster(("peer-a",), V)),  # only one cluster, of one member
        (3, ["peer-a", "peer-b", "peer-c"], a.CreateCluster(("peer-a", "peer-b", "peer-c"), V)),
        (3, ["peer-a", "peer-b"], a.CreateCluster(("peer-a", "peer-b"), V)),  # quorum of 3 is enough
        (3, ["peer-a"], a.Wait()),
        (5, ["peer-a", "peer-b"], a.Wait()),
    ],
)
def test_create_needs_a_quorum_of_the_spec(count: int, peers: list[str], expected: a.Action) -> None:
    assert plan(view(count, created=False, peers=[peer(p) for p in peers])).action == expected


def test_create_uses_only_peers_that_have_the_version() -> None:
    peers = [peer("peer-a", installed=("3.3.25",)), peer("peer-b"), peer("peer-c")]
    d = plan(view(3, created=False, peers=peers))
    assert d.action == a.CreateCluster(("peer-b", "peer-c"), V)
    d = plan(view(3, created=False, peers=[peer("peer-a", installed=("3.3.25",)), peer("peer-b")]))
    assert d.action == a.Wait() and "peer-a" in d.reason and "3.3.25" in d.reason


def test_existing_etcd_without_marker_is_never_created_again() -> None:
    d = plan(view(1, created=False, peers=[peer("peer-a", member=True)], members=[member("peer-a")]))
    assert d.action == a.MarkCreated()


def test_created_cluster_with_no_state_anywhere_needs_a_restore() -> None:
    d = plan(view(3, peers=[peer("peer-a"), peer("peer-b"), peer("peer-c")]))
    assert d.action == a.Wait() and d.reason == ZERO_MEMBERS


def test_members_unreachable_but_state_exists_waits_for_quorum() -> None:
    d = plan(view(3, peers=[peer("peer-a", member=True)], members_problem="context deadline exceeded"))
    assert d.action == a.Wait() and "deadline" in d.reason


def test_quarantine_lifted_once_healthy() -> None:
    peers = [peer("peer-a", member=True, quarantined=True)]
    assert plan(view(1, peers=peers, members=[member("peer-a")])).action == a.LiftQuarantine(("peer-a",))
    d = plan(view(1, peers=peers, members=[member("peer-a", healthy=False)]))
    assert d.action == a.Wait()


def test_quarantine_lifted_with_two_of_three() -> None:
    peers = [peer("peer-a", member=True, quarantined=True), peer("peer-b", member=True, quarantined=True)]
    d = plan(view(3, peers=peers, members=[member("peer-a"), member("peer-b")]))
    assert d.action == a.LiftQuarantine(("peer-a", "peer-b"))


def test_grow_adds_an_idle_peer_as_learner() -> None:
    peers = [peer("peer-a", member=True), peer("peer-b")]
    assert plan(view(3, peers=peers, members=[member("peer-a")])).action == a.AddMember("peer-b", True)


def test_grow_on_33_adds_a_voting_member() -> None:
    peers = [peer("peer-a", member=True, version="3.3.25"), peer("peer-b")]
    assert plan(view(3, peers=peers, members=[member("peer-a")])).action == a.AddMember("peer-b", False)


def test_grow_waits_without_idle_peer() -> None:
    d = plan(view(3, peers=[peer("peer-a", member=True)], members=[member("peer-a")]))
    assert d.action == a.Wait() and "no idle peer" in d.reason


def test_grow_waits_when_unhealthy() -> None:
    peers = [peer("peer-a", member=True), peer("peer-b", member=True), peer("peer-c")]
    members = [member("peer-a"), member("peer-b", healthy=False)]
    assert plan(view(3, peers=peers, members=members)).action == a.Wait()


def test_learner_is_promoted() -> None:
    peers = [peer("peer-a", member=True), peer("peer-b", member=True)]
    members = [member("peer-a"), member("peer-b", learner=True)]
    assert plan(view(3, peers=peers, members=members)).action == a.PromoteMember(
        members[1].member_id, "peer-b"
    )


def test_added_but_never_started_member_is_started() -> None:
    peers = [peer("peer-a", member=True), peer("peer-b")]
    members = [member("peer-a"), member("peer-b", started=False, healthy=False)]
    assert plan(view(3, peers=peers, members=members)).action == a.StartAddedMember("peer-b")


def test_shrink_removes_unhealthy_first() -> None:
    peers = [peer(p, member=True) for p in ("peer-a", "peer-b", "peer-c")]
    members = [member("peer-a"), member("peer-b", healthy=False), member("peer-c")]
    d = plan(view(1, peers=peers, members=members))
    assert d.action == a.RemoveMember(members[1].member_id, "peer-b", "peer-b")


def test_shrink_three_to_one_healthy() -> None:
    peers = [peer(p, member=True) for p in ("peer-a", "peer-b", "peer-c")]
    members = [member(p) for p in ("peer-a", "peer-b", "peer-c")]
    d = plan(view(1, peers=peers, members=members))
    assert isinstance(d.action, a.RemoveMember) and d.action.stop_peer == d.action.name


def test_remove_never_breaks_quorum() -> None:
    peers = [peer("peer-a", member=True), peer("peer-b", member=True)]
    members = [member("peer-a"), member("peer-b"), member("peer-c", healthy=False)]
    # The dead member goes first: 2 of 2 stay healthy.
    d = plan(view(2, peers=peers, members=members))
    assert d.action == a.RemoveMember(members[2].member_id, "peer-c", None)
    # 1 of 3 healthy has no quorum: no membership change can be made, nor should be tried.
    members = [member("peer-a"), member("peer-b", healthy=False), member("peer-c", healthy=False)]
    assert plan(view(2, peers=peers[:1], members=members)).action == a.Wait()
    d = plan(
        view(
            1,
            peers=[peer("peer-a", member=True), peer("peer-b", member=True)],
            members=[member("peer-a", healthy=False), member("peer-b", healthy=False)],
        )
    )
    assert d.action == a.Wait()


def test_empty_disk_same_id_is_removed_at_once() -> None:
    peers = [peer("peer-a", member=True), peer("peer-b", member=True), peer("peer-c")]
    members = [member("peer-a"), member("peer-b"), member("peer-c", healthy=False)]
    d = plan(view(3, peers=peers, members=members))
    assert d.action == a.RemoveMember(members[2].member_id, "peer-c", None)


def test_dead_member_replaced_only_after_grace_and_with_idle_peer() -> None:
    peers = [peer("peer-a", member=True), peer("peer-b", member=True), peer("peer-d")]
    members = [member("peer-a"), member("peer-b"), member("peer-c", healthy=False, unhealthy_for=10)]
    assert plan(view(3, peers=peers, members=members, replace_after=60)).action == a.Wait()
    members[2] = member("peer-c", healthy=False, unhealthy_for=61)
    d = plan(view(3, peers=peers, members=members, replace_after=60))
    assert d.action == a.RemoveMember(members[2].member_id, "peer-c", None)
    # Without an idle peer to take its place, a dead member is left for its host to come back.
    assert plan(view(3, peers=peers[:2], members=members, replace_after=60)).action == a.Wait()


def test_orphan_etcd_is_stopped() -> None:
    peers = [peer("peer-a", member=True), peer("peer-b", member=True)]
    d = plan(view(1, peers=peers, members=[member("peer-a")]))
    assert d.action == a.StopOrphan("peer-b")


def test_converged() -> None:
    peers = [peer(p, member=True) for p in ("peer-a", "peer-b", "peer-c")]
    d = plan(view(3, peers=peers, members=[member(p) for p in ("peer-a", "peer-b", "peer-c")]))
    assert d.action == a.Wait() and "converged" in d.reason


def test_restore_command_comes_first() -> None:
    cmd = Command("2024-01-01T00:00:00Z-000001", 1, RestoreBackup(ClusterSpec(3, V), "b1"))
    peers = [peer(p) for p in ("peer-a", "peer-b", "peer-c")]
    d = plan(view(3, peers=peers, commands=(cmd,)))
    assert d.action == a.RestoreBackup(cmd, ("peer-a", "peer-b", "peer-c"))


def test_in_place_version_change_one_member_at_a_time() -> None:
    peers = [
        peer("peer-a", member=True, version="3.5.30"),
        peer("peer-b", member=True),
        peer("peer-c", member=True),
    ]
    members = [member(p) for p in ("peer-a", "peer-b", "peer-c")]
    spec_35 = ClusterSpec(3, "3.5.30")
    d = plan(
        ClusterView(spec=spec_35, created=True, peers={p.peer_id: p for p in peers}, members=tuple(members))
    )
    assert d.action == a.UpgradeMember("peer-b", "3.5.30")
    members[0] = member("peer-a", healthy=False)
    d = plan(
        ClusterView(spec=spec_35, created=True, peers={p.peer_id: p for p in peers}, members=tuple(members))
    )
    assert d.action == a.Wait()


def test_a_change_etcd_cannot_make_in_place_is_logical() -> None:
    peers = [peer("peer-a", member=True, version="3.5.30")]
    d = plan(
        ClusterView(
            spec=ClusterSpec(1, "3.3.25"),
            created=True,
            peers={"peer-a": peers[0]},
            members=(member("peer-a"),),
        )
    )
    assert d.action == a.LogicalVersionChange(("peer-a",), "3.3.25")


def test_version_no_peer_can_run_is_refused_but_a_patch_maps_to_the_installed_minor() -> None:
    peers = [peer("peer-a", member=True, installed=("3.4.23",))]
    d = plan(
        ClusterView(
            spec=ClusterSpec(1, "3.4.99"),
            created=True,
            peers={"peer-a": peers[0]},
            members=(member("peer-a"),),
        )
    )
    assert d.action == a.UpgradeMember("peer-a", "3.4.99")  # runs on 3.4.23, which the node logs
    d = plan(
        ClusterView(
            spec=ClusterSpec(1, "3.5.30"),
            created=True,
            peers={"peer-a": peers[0]},
            members=(member("peer-a"),),
        )
    )
    assert d.action == a.Wait() and "3.4.23" in d.reason


def test_a_restored_member_that_has_not_published_its_name_is_not_an_orphan() -> None:
    peers = [peer(p, member=True) for p in ("peer-a", "peer-b", "peer-c")]
    members = [member("peer-a"), member("peer-b"), member("peer-c", started=False, healthy=False)]
    d = plan(view(3, peers=peers, members=members))
    assert not isinstance(d.action, a.StopOrphan)
    assert d.action == a.Wait()


def test_shrink_removes_the_highest_name_when_all_are_healthy() -> None:
    peers = [peer(p, member=True) for p in ("peer-a", "peer-b", "peer-c")]
    members = [member(p) for p in ("peer-c", "peer-a", "peer-b")]
    d = plan(view(2, peers=peers, members=members))
    assert d.action == a.RemoveMember(members[0].member_id, "peer-c", "peer-c")


def test_a_member_whose_node_moved_to_https_is_updated() -> None:
    peers = [peer(p, member=True) for p in ("peer-a", "peer-b", "peer-c")]
    members = [member(p) for p in ("peer-a", "peer-b", "peer-c")]
    tls_b = PeerInfo(
        "peer-b",
        "test",
        EtcdNode(name="peer-b", peer_urls=("https://127.0.0.2:2380",)),
        peers[1].etcd_state,
        etcd_running=True,
        installed_versions=INSTALLED,
    )
    d = plan(view(3, peers=[peers[0], tls_b, peers[2]], members=members))
    assert d.action == a.UpdatePeerURLs(members[1].member_id, "peer-b", ("https://127.0.0.2:2380",))
    # Never while another member is down: the moved member is cut off until it is updated.
    members[2] = member("peer-c", healthy=False)
    assert plan(view(3, peers=[peers[0], tls_b, peers[2]], members=members)).action == a.Wait()
