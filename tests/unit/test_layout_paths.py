"""No path from data: hostile cluster tokens from the leader or the state file never reach the
filesystem. Every hostile path points inside the test's tmp folder ("/etc" becomes a folder of
tmp given by its absolute path), and each test checks that nothing under tmp changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
from fs_snapshot import tree_snapshot

from etcdmgr.model import InvalidData
from etcdmgr.node.layout import DataLayout
from etcdmgr.peer import methods

from .test_handlers import LEADER, Node, make_node

BACKUP = "2019-01-14T15:26:45Z-000001"


def hostile_tokens(tmp_path: Path) -> list[str]:
    """/etc, ../x, a/b, "" and "..", with the absolute one inside tmp: an unfixed node really
    renames what a token names."""
    victim = tmp_path / "etc"
    victim.mkdir(exist_ok=True)
    (victim / "passwd").write_text("root:x:0:0\n")
    (tmp_path / "data" / "x").mkdir(parents=True, exist_ok=True)  # what data/../x names
    return [str(victim), "../x", "a/b", "", ".."]


def test_the_layout_takes_plain_names_only(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    (tmp_path / "data" / "data").mkdir(parents=True)
    tokens = [*hostile_tokens(tmp_path), ".", "a\\b", "a\0b"]
    before = tree_snapshot(tmp_path)
    for token in tokens:
        for use in (layout.etcd_data, layout.pki, layout.move_to_trash):
            with pytest.raises(InvalidData, match="is not a plain folder name"):
                use(token)  # type: ignore[arg-type]  # a token that skipped the parser
    with pytest.raises(InvalidData, match="holds the manager's keys"):
        layout.pki("manager")  # type: ignore[arg-type]
    assert tree_snapshot(tmp_path) == before

    # What the original and kops write is a plain name.
    for token in ("-Ab3xYz9Q", "_x0-abcd", "etcd-a"):
        assert layout.etcd_data(token) == layout.root / "data" / token  # type: ignore[arg-type]
        assert layout.pki(token) == layout.root / "pki" / token  # type: ignore[arg-type]


async def leading(tmp_path: Path) -> Node:
    node = make_node(tmp_path)
    node.service.bin_dirs = (tmp_path / "no-etcd-here",)  # nothing can start etcd here
    node.healthy_peer(LEADER)
    await node.accept_leader(LEADER, "t")
    return node


def own_node_wire(node: Node) -> dict[str, Any]:
    return node.service.me.to_wire()


async def test_join_cluster_with_a_hostile_token_is_refused_and_touches_nothing(tmp_path: Path) -> None:
    node = await leading(tmp_path)
    tokens = hostile_tokens(tmp_path)
    before = tree_snapshot(tmp_path)
    for token in tokens:
        for phase in ("PREPARE", "INITIAL_CLUSTER", "JOIN_EXISTING", "CANCEL_PREPARE"):
            args = {"phase": phase, "clusterToken": token, "nodes": [own_node_wire(node)],
                    "etcdVersion": "3.4.23", "quarantined": True}  # fmt: skip
            refused = await node.refusal(methods.JOIN_CLUSTER, args, token="t")
            assert refused.code == "bad-request", (token, phase, refused)
            assert "field 'clusterToken'" in refused.message
    assert node.service.joins.prepared is None
    assert tree_snapshot(tmp_path) == before


async def test_do_restore_with_a_hostile_token_or_backup_is_refused_and_touches_nothing(
    tmp_path: Path,
) -> None:
    node = await leading(tmp_path)
    tokens = hostile_tokens(tmp_path)
    before = tree_snapshot(tmp_path)
    for token in tokens:
        args = {
            "backup": BACKUP,
            "clusterToken": token,
            "nodes": [own_node_wire(node)],
            "etcdVersion": "3.4.23",
        }
        refused = await node.refusal(methods.DO_RESTORE, args, token="t")
        assert (refused.code, "field 'clusterToken'" in refused.message) == ("bad-request", True), token
    for backup in ("../x", str(tmp_path / "etc"), ""):
        args = {"backup": backup, "clusterToken": "_x0-abcd", "nodes": [own_node_wire(node)],
                "etcdVersion": "3.4.23"}  # fmt: skip
        refused = await node.refusal(methods.DO_RESTORE, args, token="t")
        assert (refused.code, "field 'backup'" in refused.message) == ("bad-request", True), backup
    assert tree_snapshot(tmp_path) == before


@pytest.mark.parametrize("which", range(5))
async def test_a_state_file_with_a_hostile_token_is_moved_aside_and_never_used(
    tmp_path: Path, which: int
) -> None:
    node = make_node(tmp_path)
    node.service.bin_dirs = (tmp_path / "no-etcd-here",)
    token = hostile_tokens(tmp_path)[which]
    state = {
        "newCluster": True,
        "cluster": {"clusterToken": token, "nodes": [own_node_wire(node)]},
        "etcdVersion": "3.4.23",
        "quarantined": False,
    }
    node.layout.state.write_text(json.dumps(state))
    before = tree_snapshot(tmp_path)

    async with trio.open_nursery() as nursery:
        await nursery.start(node.service.run)
        info = await node.call(methods.GET_INFO)
        nursery.cancel_scope.cancel()

    assert info["etcdState"] is None
    assert "field 'clusterToken'" in info["stateProblem"]
    assert not node.layout.state.exists()
    [moved] = node.layout.root.glob("state.invalid-*")
    assert json.loads(moved.read_text()) == state, "kept as it was, for whoever looks into it"
    after = tree_snapshot(tmp_path)
    assert after.pop(str(moved.relative_to(tmp_path))) == before.pop(
        str(node.layout.state.relative_to(tmp_path))
    )
    assert after == before, "nothing else changed"
