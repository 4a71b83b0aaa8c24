"""The peer API's server-side checks, on the real handler with a real (etcd-less) node service."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from etcdmgr.daemon.config import DaemonConfig, PeerTls
from etcdmgr.daemon.handlers import Handler, make_handler
from etcdmgr.model import PeerEndpoint
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.service import NodeService
from etcdmgr.peer import methods
from etcdmgr.peer.codec import Request
from etcdmgr.peer.directory import PeerDirectory, Source
from etcdmgr.peer.election import Follower
from etcdmgr.peer.transport import RpcError

CLUSTER = "test"
ME = "m-node"
LEADER = "c-leader"  # lower than ME, so ME accepts it
OTHER = "k-other"  # lower than ME too, but not the leader ME follows
LOWEST = "a-lowest"


@dataclass
class Node:
    handler: Handler
    directory: PeerDirectory
    follower: Follower
    layout: DataLayout
    service: NodeService
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def call(
        self,
        method: str,
        args: dict[str, Any] | None = None,
        *,
        sender: str = LEADER,
        token: str | None = None,
        cluster: str = CLUSTER,
        caller: str | None = "same as sender",
        seq: int | str | None = "the leader's next",
    ) -> Any:
        """Send one request; mutating ones get the next number of the term unless told."""
        if seq == "the leader's next":
            seq = next(self.numbers) if method in methods.MUTATING else None
        assert not isinstance(seq, str)
        request = Request(1, method, cluster, sender, args or {}, token, seq)
        return await self.handler(request, sender if caller == "same as sender" else caller)

    async def refusal(self, method: str, args: dict[str, Any] | None = None, **kwargs: Any) -> RpcError:
        with pytest.raises(RpcError) as refused:
            await self.call(method, args, **kwargs)
        return refused.value

    def healthy_peer(self, peer_id: str) -> None:
        endpoints = (PeerEndpoint("127.0.0.9", 8000 + len(self.directory.records)),)
        self.directory.learn(peer_id, endpoints, Source.DISCOVERY)
        self.directory.ping_ok(peer_id, endpoints)

    async def accept_leader(self, leader: str, token: str, seq_floor: int = 1) -> None:
        view = self.directory.healthy()
        args = {"leaderId": leader, "token": token, "view": view, "seqFloor": seq_floor}
        answer = await self.call(methods.LEADER_NOTIFICATION, args, sender=leader)
        assert answer == {"accepted": True, "reason": ""}


def make_node(tmp_path: Path) -> Node:
    config = DaemonConfig(
        cluster_name=CLUSTER,
        address="127.0.0.1",
        etcd_address="127.0.0.1",
        peer_urls=("http://127.0.0.1:2380",),
        client_urls=("http://127.0.0.1:4001",),
        quarantine_client_urls=("http://127.0.0.1:8001",),
        backup_store=f"file://{tmp_path}/store",
        discovery_store=f"file://{tmp_path}/discovery",
        data_dir=tmp_path / "data",
        peer_tls=PeerTls.OFF,
        etcd_insecure=True,
    )
    layout = DataLayout(config.data_dir)
    directory = PeerDirectory(ME, (PeerEndpoint("127.0.0.1", 8000),), timeout=60.0)
    follower = Follower()
    service = NodeService(config.node_config(), layout, ME)
    return Node(make_handler(CLUSTER, directory, follower, service), directory, follower, layout, service)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return make_node(tmp_path)


async def test_wrong_cluster_is_refused_and_logged(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="etcdmgr.daemon.handlers")
    for method in (methods.PING, methods.GET_INFO, methods.STOP_ETCD):
        refused = await node.refusal(method, cluster="prod")
        assert refused.code == "wrong-cluster"
        assert "'test'" in refused.message and "'prod'" in refused.message
    logged = [r.getMessage() for r in caplog.records]
    assert f"refused StopEtcd from {LEADER}: cluster 'prod' is not ours ('test')" in logged


async def test_a_plain_caller_is_answered_by_the_id_it_claims(node: Node) -> None:
    # The server refuses a request whose sender is not the certificate's id before any handler
    # runs (tests/integration/test_transport.py); without TLS there is nothing to compare with.
    assert (await node.call(methods.GET_INFO, caller=None))["peerId"] == ME


@pytest.mark.parametrize("method", sorted(methods.MUTATING))
async def test_mutating_calls_before_any_leader_is_accepted_are_refused(
    node: Node, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    for token in (None, "guessed"):
        refused = await node.refusal(method, {}, token=token)
        assert (refused.code, refused.message) == ("stale-token", "no leader accepted yet")
    assert f"refused {method} from {LEADER}: no leader accepted yet" in caplog.text
    assert not node.layout.state.exists(), "nothing was changed"


async def test_only_the_accepted_leader_with_its_current_token_may_mutate(node: Node) -> None:
    node.healthy_peer(LEADER)
    node.healthy_peer(OTHER)
    await node.accept_leader(LEADER, "token-1")

    missing = await node.refusal(methods.STOP_ETCD, token=None)
    stale = await node.refusal(methods.STOP_ETCD, token="token-0")
    assert (missing.code, stale.code) == ("stale-token", "stale-token")
    assert f"following {LEADER}" in stale.message

    # Another healthy peer that learned the token still is not the leader.
    not_leader = await node.refusal(methods.STOP_ETCD, sender=OTHER, token="token-1")
    assert (not_leader.code, not_leader.message) == (
        "stale-token",
        f"stale leadership token (following {LEADER})",
    )

    # The leader itself gets through to the node service (an empty node has nothing to stop).
    assert await node.call(methods.STOP_ETCD, token="token-1") == {}
    no_etcd = await node.refusal(methods.RECONFIGURE, {"quarantined": False}, token="token-1")
    assert no_etcd.code == "no-etcd", "refused by the node service, not by the token check"

    # A new term makes the old token stale.
    await node.accept_leader(LEADER, "token-2")
    assert (await node.refusal(methods.STOP_ETCD, token="token-1")).code == "stale-token"
    assert await node.call(methods.STOP_ETCD, token="token-2") == {}


async def test_a_restarted_node_accepts_the_leaders_token_at_the_next_notification(tmp_path: Path) -> None:
    before = make_node(tmp_path)
    before.healthy_peer(LEADER)
    await before.accept_leader(LEADER, "token-1")
    assert await before.call(methods.STOP_ETCD, token="token-1") == {}

    # The restart forgets the token: refused until the leader's next cycle, then accepted.
    after = make_node(tmp_path)
    assert (await after.refusal(methods.STOP_ETCD, token="token-1")).code == "stale-token"
    after.healthy_peer(LEADER)  # its first gossip round reaches the leader
    await after.accept_leader(LEADER, "token-1")
    assert await after.call(methods.STOP_ETCD, token="token-1") == {}


async def test_leader_notifications_that_must_be_refused(node: Node) -> None:
    node.healthy_peer(LEADER)
    node.healthy_peer(OTHER)

    # The leader does not see a peer this node knows to be healthy.
    blind = await node.call(
        methods.LEADER_NOTIFICATION, {"leaderId": LEADER, "token": "t", "view": [LEADER, ME]}, sender=LEADER
    )
    assert blind == {"accepted": False, "reason": f"leader {LEADER} does not see healthy peers {OTHER}"}

    # A healthy peer with a lower id should lead instead.
    node.healthy_peer(LOWEST)
    view = node.directory.healthy()
    lower = await node.call(
        methods.LEADER_NOTIFICATION, {"leaderId": LEADER, "token": "t", "view": view}, sender=LEADER
    )
    assert lower == {
        "accepted": False,
        "reason": f"peer {LOWEST} is healthy and has a lower id than {LEADER}",
    }

    # Nobody may announce another peer as leader.
    proxy = await node.refusal(
        methods.LEADER_NOTIFICATION, {"leaderId": LOWEST, "token": "t", "view": view}, sender=OTHER
    )
    assert proxy.code == "bad-request"
    assert node.follower.token is None, "no refused notification was accepted"


async def test_malformed_arguments_are_bad_requests(node: Node) -> None:
    node.healthy_peer(LEADER)
    await node.accept_leader(LEADER, "t")
    cases: list[tuple[str, dict[str, Any]]] = [
        (methods.JOIN_CLUSTER, {"phase": "SIDEWAYS", "clusterToken": "c"}),
        (methods.JOIN_CLUSTER, {"phase": "PREPARE"}),
        (methods.JOIN_CLUSTER, {"phase": "PREPARE", "clusterToken": "c", "nodes": [{"name": 7}]}),
        (methods.RECONFIGURE, {"quarantined": "yes"}),
        (methods.DO_RESTORE, {"backup": "", "clusterToken": "c", "nodes": [], "etcdVersion": "3.4.23"}),
        (methods.LEADER_NOTIFICATION, {"leaderId": LEADER}),
    ]
    for method, args in cases:
        refused = await node.refusal(method, args, token="t")
        assert refused.code == "bad-request", (method, args, refused)
    unknown = await node.refusal("FormatDisk", token="t")
    assert unknown.code == "unknown-method"
    assert not node.layout.state.exists()


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=6)
    | st.binary(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
arg_names = st.sampled_from(
    ["phase", "clusterToken", "nodes", "etcdVersion", "quarantined", "backup", "leaderId", "token", "view",
     "endpoints", "known", "name", "peerURLs"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(
        [*sorted(methods.MUTATING), methods.PING, methods.GET_INFO, methods.LEADER_NOTIFICATION]
    ),
    args=st.dictionaries(arg_names, values, max_size=5),
)
@example(method="DoRestore", args={"nodes": True})  # once crashed the handler with a TypeError
@example(method="JoinCluster", args={"phase": "PREPARE", "nodes": 1})
async def test_any_arguments_from_the_leader_get_an_answer_or_a_refusal(
    tmp_path: Path, method: str, args: dict[str, Any]
) -> None:
    node = make_node(tmp_path)
    node.service.bin_dirs = (tmp_path / "no-etcd-here",)  # whatever the arguments say, no etcd starts
    node.healthy_peer(LEADER)
    await node.accept_leader(LEADER, "t")
    try:
        await node.call(method, args, token="t")
    except RpcError as e:
        # Anything else would reach the client as "internal", with a traceback in the log.
        assert e.code in {"bad-request", "failed", "no-etcd", "not-prepared", "busy"}, e


async def test_a_mutating_call_is_carried_out_once_and_one_that_arrives_late_is_refused(node: Node) -> None:
    node.healthy_peer(LEADER)
    await node.accept_leader(LEADER, "token-1")
    assert await node.call(methods.STOP_ETCD, token="token-1", seq=5) == {}
    replayed = await node.refusal(methods.STOP_ETCD, token="token-1", seq=5)
    assert replayed.code == "stale-token" and "late or again" in replayed.message

    # Call 6 timed out at the leader, which gave its number up; the next cycle's notification
    # carries the new floor, so call 6 is refused when the network finally delivers it.
    await node.accept_leader(LEADER, "token-1", seq_floor=7)
    late = await node.refusal(methods.STOP_ETCD, token="token-1", seq=6)
    assert late.code == "stale-token" and "late or again" in late.message
    assert await node.call(methods.STOP_ETCD, token="token-1", seq=7) == {}


async def test_a_leader_of_the_previous_release_changes_nothing_until_it_is_upgraded(node: Node) -> None:
    node.healthy_peer(LEADER)
    await node.accept_leader(LEADER, "token-1")
    refused = await node.refusal(methods.STOP_ETCD, token="token-1", seq=None)
    assert refused.code == "stale-token" and "earlier etcdmgr release" in refused.message
