"""Each peer call's arguments and answer: one definition, the previous release's wire maps, strict
parsing, and the leader's NodeApi and a node's handler speaking through the same dataclasses."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from etcdmgr.model import EtcdCluster, EtcdNode, EtcdState, InvalidData, PeerEndpoint, PeerInfo
from etcdmgr.model.ids import LeaderToken
from etcdmgr.peer import methods
from etcdmgr.peer.calls import (
    MAX_KNOWN,
    DoRestoreArgs,
    JoinClusterArgs,
    JoinPhase,
    LeaderNotificationAnswer,
    LeaderNotificationArgs,
    PingAnswer,
    PingArgs,
    ReconfigureArgs,
)
from etcdmgr.peer.codec import Request
from etcdmgr.peer.election import Term
from etcdmgr.peer.node_api import NodeApi
from etcdmgr.peer.rpc_client import PeerCaller
from etcdmgr.peer.transport import RpcError

from .test_handlers import LEADER, ME, Node, make_node

BACKUP = "2019-01-14T15:26:45Z-000001"
NODE_WIRE = {
    "name": "-Ab3xYz9Q",
    "peerUrls": ["https://10.0.0.1:2380"],
    "clientUrls": ["https://10.0.0.1:4001"],
    "quarantinedClientUrls": ["https://10.0.0.1:8001"],
    "tlsEnabled": True,
}

# The maps the previous release (f418929) sends, field for field: they must parse, and ours must
# be the same maps, so daemons of both releases understand each other.
PREVIOUS_RELEASE: list[tuple[Any, dict[str, Any]]] = [
    (PingArgs, {"endpoints": [{"ip": "10.0.0.1", "port": 8000}], "known": {"etcd-a": [{"ip": "10.0.0.2", "port": 8000}]}}),
    (PingAnswer, {"peerId": "_x0-abcd", "known": {"_x0-abcd": [{"ip": "10.0.0.3", "port": 8000}]}}),
    (LeaderNotificationArgs, {"leaderId": "-Ab3xYz9Q", "token": "-tok_en", "view": ["-Ab3xYz9Q", "etcd-a"]}),
    (LeaderNotificationAnswer, {"accepted": False, "reason": "peer a is healthy and has a lower id than b"}),
    (JoinClusterArgs, {"phase": "PREPARE", "clusterToken": "_x0-abcd", "nodes": [NODE_WIRE],
                       "etcdVersion": "3.4.23", "quarantined": True}),
    (ReconfigureArgs, {"quarantined": None, "etcdVersion": "3.5.30"}),
    (ReconfigureArgs, {"quarantined": False, "etcdVersion": None}),
    (DoRestoreArgs, {"backup": BACKUP, "clusterToken": "-Ab3xYz9Q", "nodes": [NODE_WIRE], "etcdVersion": "3.4.23"}),
]  # fmt: skip


@pytest.mark.parametrize(("call", "wire"), PREVIOUS_RELEASE)
def test_the_previous_releases_maps_parse_and_are_sent_unchanged(call: Any, wire: dict[str, Any]) -> None:
    assert call.from_wire(wire).to_wire() == wire


def test_get_info_of_a_previous_release_parses_and_ours_adds_only_the_optional_state_problem() -> None:
    state = EtcdState(EtcdCluster("_x0-abcd", (EtcdNode.from_wire(NODE_WIRE),)), "3.4.23")
    info = PeerInfo("-Ab3xYz9Q", "etcd-main", EtcdNode.from_wire(NODE_WIRE), state, True, ("3.4.23",))
    previous = {
        "peerId": "-Ab3xYz9Q",
        "clusterName": "etcd-main",
        "node": NODE_WIRE,
        "etcdState": {
            "newCluster": False,
            "cluster": {"clusterToken": "_x0-abcd", "nodes": [NODE_WIRE]},
            "etcdVersion": "3.4.23",
            "quarantined": False,
        },
        "etcdRunning": True,
        "installedVersions": ["3.4.23"],
    }
    assert info.to_wire() == previous
    assert PeerInfo.from_wire(previous) == info
    unreadable = PeerInfo(
        "etcd-a", "etcd-main", EtcdNode("etcd-a"), None, state_problem="state file is corrupt"
    )
    assert unreadable.to_wire()["stateProblem"] == "state file is corrupt"
    assert PeerInfo.from_wire(unreadable.to_wire()) == unreadable


@pytest.mark.parametrize("token", ["/etc", "../x", "a/b", "", ".."])  # parsed only, never used as a path
def test_join_and_restore_refuse_a_token_that_is_no_plain_name(token: str) -> None:
    join = {
        "phase": "PREPARE",
        "clusterToken": token,
        "nodes": [],
        "etcdVersion": "3.4.23",
        "quarantined": True,
    }
    restore = {"backup": BACKUP, "clusterToken": token, "nodes": [], "etcdVersion": "3.4.23"}
    with pytest.raises(
        InvalidData, match=r"^JoinCluster: field 'clusterToken': .* is not a valid cluster token"
    ):
        JoinClusterArgs.from_wire(join)
    with pytest.raises(
        InvalidData, match=r"^DoRestore: field 'clusterToken': .* is not a valid cluster token"
    ):
        DoRestoreArgs.from_wire(restore)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phase": "SIDEWAYS"}, "phase"),
        ({"etcdVersion": ""}, "etcdVersion"),
        ({"etcdVersion": "garbage"}, "etcdVersion"),
        ({"quarantined": "yes"}, "quarantined"),
        ({"nodes": {"name": "x"}}, "nodes"),
        ({"nodes": [{**NODE_WIRE, "name": "../x"}]}, "nodes'\\[0\\]: etcd node: field 'name"),
        ({"nodes": [{**NODE_WIRE, "peerUrls": ["http://a:2380,evil=http://b:2380"]}]}, "nodes'\\[0\\]"),
        ({"nodes": [NODE_WIRE, NODE_WIRE]}, "nodes' names a member twice"),
    ],
)
def test_malformed_join_arguments_name_the_field(change: dict[str, Any], field: str) -> None:
    wire = {"phase": "PREPARE", "clusterToken": "c", "nodes": [], "etcdVersion": "3.4.23", **change}
    with pytest.raises(InvalidData, match=f"^JoinCluster: field '{field}"):
        JoinClusterArgs.from_wire(wire)


def test_no_positional_flags() -> None:
    with pytest.raises(TypeError):
        JoinClusterArgs(JoinPhase.PREPARE, "c", (), "3.4.23", True)  # type: ignore[misc]
    with pytest.raises(TypeError):
        ReconfigureArgs(True)  # type: ignore[misc]


def test_gossip_keeps_the_good_entries_of_a_ping_and_reads_a_bounded_number() -> None:
    good = {"ip": "10.0.0.2", "port": 8000}
    known = {"etcd-a": [good], "a b": [good], "../x": [good], "etcd-b": [{"ip": "example.com", "port": 1}],
             "etcd-c": "nope", "-Ab3xYz9Q": [good]}  # fmt: skip
    parsed = PingArgs.from_wire({"endpoints": [good], "known": known})
    assert set(parsed.known) == {"etcd-a", "-Ab3xYz9Q"}
    flood = {f"peer-{i}": [good] for i in range(75_000)}
    start = time.perf_counter()
    assert len(PingAnswer.from_wire({"peerId": "etcd-a", "known": flood}).known) == MAX_KNOWN
    assert time.perf_counter() - start < 0.1
    with pytest.raises(InvalidData, match=r"^Ping answer: field 'peerId'"):
        PingAnswer.from_wire({"peerId": "a/b", "known": {}})


class Loopback:
    """A PeerClient that hands the leader's calls to a node's real handler, as the wire would."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def call(
        self,
        endpoint: PeerEndpoint,
        method: str,
        args: dict[str, Any],
        *,
        expect_peer_id: str | None,
        token: str | None = None,
        seq: int | None = None,
        timeout: float = 5.0,
    ) -> Any:
        assert expect_peer_id == ME
        return await self.node.handler(Request(1, method, "test", LEADER, args, token, seq), LEADER)


async def test_the_leaders_calls_and_the_nodes_handler_share_one_definition(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    node.healthy_peer(LEADER)
    caller = PeerCaller(Loopback(node), node.directory)  # type: ignore[arg-type]
    api = NodeApi(caller)

    term = Term(LeaderToken("t-1"))
    answer = await api.notify_leader(
        ME, LeaderNotificationArgs(leader_id=LEADER, token=term.token, view=(LEADER, ME))
    )
    assert answer == LeaderNotificationAnswer(accepted=True)
    caller.term = term
    info = await api.get_info(ME)
    assert (info.peer_id, info.etcd_state, info.state_problem) == (ME, None, None)

    me = info.node
    prepare = JoinClusterArgs(
        phase=JoinPhase.PREPARE,
        cluster_token="-Ab3xYz9Q",
        nodes=(me,),
        etcd_version="3.4.23",
        quarantined=True,
    )
    await api.join_cluster(ME, prepare)
    assert node.service.joins.prepared is not None and node.service.joins.prepared[0] == "-Ab3xYz9Q"
    with pytest.raises(RpcError) as refused:
        await api.reconfigure(ME, ReconfigureArgs(quarantined=False))
    assert refused.value.code == "no-etcd"
    await api.stop_etcd(ME)
    assert not node.layout.state.exists()


async def test_a_handler_refuses_a_sender_that_is_no_peer_id(node: Node) -> None:
    refused = await node.refusal(methods.GET_INFO, sender="../x", caller=None)
    assert (refused.code, refused.message) == (
        "bad-request",
        "request: field 'from': '../x' is not a valid peer id (1-128 characters of A-Z a-z 0-9 _ . -, not '.' or '..')",
    )


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return make_node(tmp_path)


def test_endpoints_are_ip_addresses_and_ports() -> None:
    assert PeerEndpoint.from_json({"ip": "::1", "port": 8000}) == PeerEndpoint("::1", 8000)
    for bad in ({"ip": "host name", "port": 1}, {"ip": "10.0.0.1", "port": 0}, {"ip": "10.0.0.1", "port": 70000},
                {"ip": "10.0.0.1"}, {"port": 1}):  # fmt: skip
        with pytest.raises(InvalidData, match=r"^endpoint: field "):
            PeerEndpoint.from_json(bad)


def test_a_nodes_own_etcd_health_travels_only_when_it_checked() -> None:
    node = EtcdNode(name=ME, peer_urls=("https://127.0.0.1:2380",))
    checked = PeerInfo(ME, "test", node, None, etcd_healthy=True)  # type: ignore[arg-type]
    assert PeerInfo.from_wire(checked.to_wire()).etcd_healthy is True
    unchecked = PeerInfo(ME, "test", node, None)  # type: ignore[arg-type]
    assert "etcdHealthy" not in unchecked.to_wire(), "the first release's map, unchanged"
    assert PeerInfo.from_wire(unchecked.to_wire()).etcd_healthy is None
