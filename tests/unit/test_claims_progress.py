"""A restore's claim also says which nodes restored the backup so far (for `ctl restore-backup
--wait`); the claim keeps its holder, token and time."""

from __future__ import annotations

from pathlib import Path

from etcdmgr.controller.claims import Claims, RestoreClaim
from etcdmgr.model.ids import CommandName
from etcdmgr.store import FileStore
from etcdmgr.store.layout import CLAIM_FILE, command_file_key

COMMAND = CommandName("2026-01-02T12:00:00Z-000000")


async def test_progress_lists_the_restored_nodes_in_the_claim(tmp_path: Path) -> None:
    store = FileStore(tmp_path, f"file://{tmp_path}")
    (tmp_path / "control" / COMMAND).mkdir(parents=True)
    claims = Claims(store, "leader-a")
    assert await claims.restore(COMMAND, "new-token", followers=set())
    key = command_file_key(COMMAND, CLAIM_FILE)
    first = RestoreClaim.from_bytes(await store.read_claim(key) or b"")
    await claims.progress(COMMAND, ["node-c", "node-a"])
    claim = RestoreClaim.from_bytes(await store.read_claim(key) or b"")
    assert first is not None and claim is not None
    assert claim.restored == ("node-a", "node-c")
    assert (claim.leader, claim.cluster_token, claim.claimed_at) == (
        "leader-a",
        "new-token",
        first.claimed_at,
    )
    assert RestoreClaim.from_bytes(b'{"leader": "x", "clusterToken": "t", "restored": "not a list"}') == (
        RestoreClaim("x", "t", "", ())
    )
