"""The leader reads the member list only from the cluster most running peers serve."""

from __future__ import annotations

from etcdmgr.controller.observe import managed_token
from etcdmgr.model import PeerInfo
from etcdmgr.model.cluster import EtcdCluster, EtcdNode, EtcdState


def peer(pid: str, token: str | None, running: bool = True) -> PeerInfo:
    state = EtcdState(EtcdCluster(token), "3.5.30") if token is not None else None
    return PeerInfo(pid, "test", EtcdNode(pid), state, etcd_running=running)


def infos(*peers: PeerInfo) -> dict[str, PeerInfo]:
    return {p.peer_id: p for p in peers}


def test_the_cluster_most_running_peers_serve_is_managed() -> None:
    # c was partitioned away and still serves the cluster that was restored over.
    assert managed_token(infos(peer("a", "new"), peer("b", "new"), peer("c", "old"))) == "new"


def test_stopped_and_empty_peers_do_not_count() -> None:
    assert managed_token(infos(peer("a", "old", running=False), peer("b", "new"), peer("c", None))) == "new"
    assert managed_token(infos(peer("a", "old", running=False), peer("c", None))) is None


def test_a_tie_is_broken_the_same_way_by_every_leader() -> None:
    assert managed_token(infos(peer("a", "y"), peer("b", "x"))) == "x"
    assert managed_token(infos(peer("b", "x"), peer("a", "y"))) == "x"
