"""A CA rotation changed the CA bundles a member's etcd was started with: the leader restarts
the members one at a time, only while every member is healthy."""

from __future__ import annotations

from dataclasses import replace

from etcdmgr.controller import actions as a
from etcdmgr.controller.plan import plan
from etcdmgr.controller.status import TRUST_RESTART_PENDING, peer_rows
from etcdmgr.model import PeerInfo
from etcdmgr.peer.calls import ReconfigureArgs
from tests.unit.test_plan import member, peer, view

PEERS = ("peer-a", "peer-b", "peer-c")


def outdated(pid: str) -> PeerInfo:
    return replace(peer(pid, member=True), etcd_trust_outdated=True)


def test_members_with_outdated_trust_are_restarted_one_at_a_time() -> None:
    peers = [peer("peer-a", member=True), outdated("peer-b"), outdated("peer-c")]
    d = plan(view(3, peers=peers, members=[member(p) for p in PEERS]))
    assert d.action == a.RestartMember("peer-b")
    assert "trusts other CA certificates" in d.reason and "no quorum" not in d.reason


def test_the_restart_waits_until_every_member_is_healthy() -> None:
    peers = [peer("peer-a", member=True), outdated("peer-b"), outdated("peer-c")]
    members = [member("peer-a"), member("peer-b"), member("peer-c", healthy=False)]
    d = plan(view(3, peers=peers, members=members))
    assert d.action == a.Wait() and "waits until every member is healthy" in d.reason


def test_a_cluster_of_one_is_restarted_too_and_says_clients_wait() -> None:
    d = plan(view(1, peers=[outdated("peer-a")], members=[member("peer-a")]))
    assert d.action == a.RestartMember("peer-a") and "no quorum" in d.reason


def test_nothing_outdated_converges() -> None:
    peers = [peer(p, member=True) for p in PEERS]
    assert "converged" in plan(view(3, peers=peers, members=[member(p) for p in PEERS])).reason


def test_the_flag_and_the_restart_travel_only_when_set() -> None:
    info = outdated("peer-a")
    assert info.to_wire()["etcdTrustOutdated"] is True
    assert PeerInfo.from_wire(info.to_wire()) == info
    assert "etcdTrustOutdated" not in peer("peer-a", member=True).to_wire()
    assert PeerInfo.from_wire(peer("peer-a", member=True).to_wire()).etcd_trust_outdated is False
    assert ReconfigureArgs(restart=True).to_wire()["restart"] is True
    assert "restart" not in ReconfigureArgs(quarantined=False).to_wire()
    assert ReconfigureArgs.from_wire(ReconfigureArgs(restart=True).to_wire()).restart


def test_ctl_status_shows_the_pending_restart_as_the_peers_problem() -> None:
    peers = [peer("peer-a", member=True), outdated("peer-b")]
    rows = {r.peer_id: r.problem for r in peer_rows(view(2, peers=peers, members=[]), {})}
    assert rows == {"peer-a": "", "peer-b": TRUST_RESTART_PENDING}
