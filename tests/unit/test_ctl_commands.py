"""`ctl list-commands` shows failed commands with why, and `delete-command` removes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from etcdmgr.cli import ctl_cmd
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command, RestoreBackup
from etcdmgr.store import FileStore

SPEC = ClusterSpec(member_count=1, etcd_version="3.5.30")
BACKUP = "2024-06-15T12:00:00Z-000001"


def queue_two_restores_first_failed(root: Path) -> tuple[str, str]:
    async def seed() -> tuple[str, str]:
        store = FileStore(root, f"file://{root}")
        await store.write_spec(SPEC)
        first = await store.add_command(Command("", 1_000_000_000, RestoreBackup(SPEC, BACKUP)))
        second = await store.add_command(Command("", 2_000_000_000, RestoreBackup(SPEC, BACKUP)))
        await store.mark_command_failed(first, "restore timed out", datetime(2024, 6, 15, 12, 0, tzinfo=UTC))
        return first, second

    return trio.run(seed)


def test_list_commands_shows_failed_ones_with_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = queue_two_restores_first_failed(tmp_path)
    assert ctl_cmd.main([f"--backup-store=file://{tmp_path}", "list-commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [first, second], "in run order"
    assert lines[0].endswith("\tFAILED 2024-06-15T12:00:00Z: restore timed out")
    assert "FAILED" not in lines[1]

    assert ctl_cmd.main([f"--backup-store=file://{tmp_path}", "-o", "json", "list-commands"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[first]["failed"] == {"reason": "restore timed out", "time": "2024-06-15T12:00:00Z"}
    assert "failed" not in doc[second]


def test_a_failed_command_can_be_deleted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = queue_two_restores_first_failed(tmp_path)
    assert ctl_cmd.main([f"--backup-store=file://{tmp_path}", "delete-command", first]) == 0
    assert not (tmp_path / "control" / first).exists()
    capsys.readouterr()
    assert ctl_cmd.main([f"--backup-store=file://{tmp_path}", "list-commands"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == [second]
