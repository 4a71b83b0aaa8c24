"""A corrupt state file is not an empty disk: the node moves it aside, says so in GetInfo (also
after a restart), and the leader keeps its member until --replace-after, where an empty disk
would have it removed at once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from etcdmgr.controller import actions as a
from etcdmgr.controller.plan import plan
from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.model import ClusterSpec, EtcdCluster, EtcdNode, EtcdState, PeerInfo
from etcdmgr.peer import methods

from .test_handlers import Node, make_node

V = "3.4.23"
TOKEN = "_x0-abcd"


async def started(node: Node) -> dict[str, object]:
    """Start the node service as the daemon does, and return its GetInfo answer."""
    node.service.bin_dirs = (node.layout.root / "no-etcd-here",)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.service.run)
        info: dict[str, object] = await node.call(methods.GET_INFO)
        nursery.cancel_scope.cancel()
    return info


@pytest.mark.parametrize("content", [b"{not json", b"\n\x16\n\x08_x0-abcd\x12\x0a", b'{"etcdVersion": ""}'])
async def test_a_corrupt_state_file_is_moved_aside_and_reported(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    empty = await started(make_node(tmp_path / "empty"))
    assert (empty["etcdState"], "stateProblem" in empty) == (None, False), "an empty disk is no problem"
    assert "this node is empty" in caplog.text

    node = make_node(tmp_path)
    node.layout.root.mkdir(parents=True)
    node.layout.state.write_bytes(content)
    (node.layout.root / "data" / TOKEN).mkdir(parents=True)  # the member's data, untouched

    info = await started(node)

    assert info["etcdState"] is None
    problem = str(info["stateProblem"])
    assert f"state file {node.layout.state} is corrupt" in problem
    [moved] = node.layout.root.glob("state.invalid-*")
    assert f"moved aside to {moved.name}" in problem
    assert moved.read_bytes() == content
    if content.startswith(b"{"):
        assert not node.layout.state.exists()
    else:  # etcd-manager's form: the empty message (no state) keeps the form for the next write
        assert node.layout.state.read_bytes() == b""
    assert (node.layout.root / "data" / TOKEN).is_dir()
    assert f"moved aside to {moved.name}. This node runs no etcd" in caplog.text

    # After a restart the state is gone, but the data is there: still not an empty disk.
    again = await started(make_node(tmp_path))
    assert again["stateProblem"] == f"no state, but etcd data under data/: {TOKEN}"
    assert list(node.layout.root.glob("state.invalid-*")) == [moved]


def node(pid: str) -> EtcdNode:
    n = ord(pid[-1]) - ord("a") + 1
    return EtcdNode(
        name=pid, peer_urls=(f"http://127.0.0.{n}:2380",), client_urls=(f"http://127.0.0.{n}:4001",)
    )


def peer(pid: str, *, member: bool = True, problem: str | None = None) -> PeerInfo:
    state = EtcdState(EtcdCluster(TOKEN, (node(pid),)), V) if member else None
    return PeerInfo(pid, "test", node(pid), state, member, (V,), state_problem=problem)


def member(pid: str, *, healthy: bool = True, unhealthy_for: float = 0.0) -> MemberView:
    n = node(pid)
    return MemberView(
        1000 + ord(pid[-1]), pid, n.peer_urls, n.client_urls, healthy, unhealthy_for=unhealthy_for
    )


def cluster(c: PeerInfo, c_member: MemberView) -> ClusterView:
    return ClusterView(
        spec=ClusterSpec(3, V),
        created=True,
        peers={p.peer_id: p for p in (peer("a"), peer("b"), c)},
        members=(member("a"), member("b"), c_member),
        replace_after=60.0,
    )


def test_the_leader_keeps_the_member_of_a_node_that_cannot_read_its_state() -> None:
    unreadable = peer("c", member=False, problem="state file is corrupt; moved aside to state.invalid-x")

    # An empty disk: removed at once (the node can never serve that member again).
    empty = plan(cluster(peer("c", member=False), member("c", healthy=False, unhealthy_for=5)))
    assert isinstance(empty.action, a.RemoveMember)

    # A state it cannot read: the member waits for --replace-after; the reason says why.
    waiting = plan(cluster(unreadable, member("c", healthy=False, unhealthy_for=5)))
    assert isinstance(waiting.action, a.Wait)
    assert "node c cannot read its state (state file is corrupt" in waiting.reason
    assert "replaced only if still unhealthy after 60s" in waiting.reason

    # Still unhealthy after --replace-after: replaced like any dead member.
    late = plan(cluster(unreadable, member("c", healthy=False, unhealthy_for=61)))
    assert isinstance(late.action, a.RemoveMember) and late.action.name == "c"
    assert "cannot read its state" in late.reason

    # The member list decides: a member etcd finds healthy is never removed for it.
    serving = plan(cluster(unreadable, member("c", healthy=True)))
    assert not isinstance(serving.action, a.RemoveMember)
