"""`ctl` as the original's etcd-manager-ctl: `delete-command <backup name>` removes the restores of
that backup (our command names work too), and no command means `get`."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from etcdmgr.cli import ctl_cmd
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command, RestoreBackup
from etcdmgr.model.ids import BackupName
from etcdmgr.store import FileStore

SPEC = ClusterSpec(member_count=3, etcd_version="3.5.30")
OLD = BackupName("2019-01-14T15:29:48Z-000003")
NEW = BackupName("2019-01-14T16:00:00Z-000001")


def queue(root: Path, *backups: BackupName) -> list[str]:
    async def seed() -> list[str]:
        store = FileStore(root, f"file://{root}")
        await store.write_spec(SPEC)
        return [
            await store.add_command(Command(None, (i + 1) * 1_000_000_000, RestoreBackup(SPEC, b)))
            for i, b in enumerate(backups)
        ]

    return trio.run(seed)


def queued(root: Path) -> list[str]:
    return sorted(p.parent.name for p in (root / "control").glob("*/_command.json"))


def ctl(root: Path, *args: str) -> int:
    return ctl_cmd.main([f"-backup-store=file://{root}", *args])


def test_delete_command_takes_the_backup_name_as_the_original_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, other = queue(tmp_path, OLD, OLD, NEW)
    assert ctl(tmp_path, "delete-command", OLD) == 0
    assert queued(tmp_path) == [other], "every restore of that backup, and only those"
    assert capsys.readouterr().out.splitlines() == [f"deleted command {first}", f"deleted command {second}"]


def test_delete_command_takes_a_command_name_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, other = queue(tmp_path, OLD, NEW)
    assert ctl(tmp_path, "delete-command", first) == 0
    assert queued(tmp_path) == [other]


def test_delete_command_of_nothing_queued_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queue(tmp_path, OLD)
    assert ctl(tmp_path, "delete-command", NEW) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no queued command" in err and NEW in err
    assert ctl(tmp_path, "delete-command", "not-a-name") == 1
    assert "is not a command name" in capsys.readouterr().err


def test_ctl_without_a_command_prints_the_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queue(tmp_path)
    assert ctl(tmp_path, "get") == 0
    spec = capsys.readouterr().out
    assert spec == 'member_count:3 etcd_version:"3.5.30"\n'
    assert ctl(tmp_path) == 0
    assert capsys.readouterr().out == spec
    assert ctl(tmp_path, "-v=2") == 0  # klog's flag, as the original takes it
    assert capsys.readouterr().out == spec


def test_ctl_refuses_an_unknown_command_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ctl(tmp_path, "create-backup") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "create-backup" in err and "Usage" not in err
