"""Files of ours in the store (status, backup requests, a backup's figures and drill record):
readable and writable through the store, and invisible to the original's listings."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etcdmgr.model.ids import BackupName
from etcdmgr.store import FileStore, StoreError

ORIGINAL = Path(__file__).parent.parent / "fixtures" / "original_store"
BACKUP = BackupName("2019-01-14T15:26:45Z-000001")
NOON = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def original(tmp_path: Path) -> FileStore:
    root = tmp_path / "store"
    shutil.copytree(ORIGINAL, root)
    return FileStore(root, f"file://{root}")


def original_command_files(root: Path) -> list[str]:
    """What etcd-manager's ListCommands reads: every `_command.json` under control/, any depth."""
    return sorted(
        str(p.relative_to(root)) for p in (root / "control").rglob("*") if p.name == "_command.json"
    )


def original_backups(root: Path) -> list[str]:
    """What etcd-manager lists as backups: folders of the store holding `_etcd_backup.meta`."""
    return sorted(p.name for p in root.iterdir() if (p / "_etcd_backup.meta").is_file())


async def test_the_original_sees_none_of_our_files(original: FileStore) -> None:
    root = original.root
    commands, backups = original_command_files(root), original_backups(root)
    await original.write_status(b'{"format": 1}')
    await original.request_backup(NOON)
    await original.write_backup_extra(BACKUP, "etcdmgr-drill.json", b"{}")
    assert original_command_files(root) == commands
    assert original_backups(root) == backups
    listing = await original.list_commands()
    assert [c.name for c in listing.commands] == ["2019-01-14T15:30:00Z-000000"]
    assert listing.broken == {} and listing.failed == {}
    assert await original.list_backups() == [BACKUP]


async def test_status_is_absent_then_replaced(original: FileStore) -> None:
    assert await original.read_status() is None
    await original.write_status(b"one")
    await original.write_status(b"two")
    assert await original.read_status() == b"two"
    assert (original.root / "control" / "etcdmgr-status.json").stat().st_mode & 0o777 == 0o600


async def test_backup_requests_are_named_apart_listed_in_order_and_removed(original: FileStore) -> None:
    first = await original.request_backup(NOON)
    second = await original.request_backup(NOON)  # the same second: the next sequence
    earlier = await original.request_backup(NOON.replace(hour=11))
    assert (first, second) == ("2026-01-02T12:00:00Z-000000", "2026-01-02T12:00:00Z-000001")
    assert await original.list_backup_requests() == [earlier, first, second]
    assert (original.root / "control" / f"etcdmgr-backup-now-{first}.json").read_text() == (
        '{"time":"2026-01-02T12:00:00Z"}'
    )
    await original.remove_backup_requests([first, earlier, "2026-01-02T13:00:00Z-000000"])
    assert await original.list_backup_requests() == [second]


async def test_unrelated_control_files_are_no_requests(original: FileStore) -> None:
    control = original.root / "control"
    (control / "etcdmgr-backup-now-garbage.json").write_text("{}")
    (control / "notes.txt").write_text("hello")
    assert await original.list_backup_requests() == []


async def test_backup_files_and_their_sizes(original: FileStore) -> None:
    files = await original.backup_files(BACKUP)
    folder = original.root / BACKUP
    assert files == {p.name: p.stat().st_size for p in folder.iterdir()}
    with pytest.raises(StoreError, match="no backup named"):
        await original.backup_files(BackupName("2019-01-14T15:26:45Z-000009"))


async def test_extras_only_of_ours_and_only_into_a_complete_backup(original: FileStore) -> None:
    assert await original.read_backup_extra(BACKUP, "etcdmgr-drill.json") is None
    await original.write_backup_extra(BACKUP, "etcdmgr-drill.json", b'{"passed": true}')
    assert await original.read_backup_extra(BACKUP, "etcdmgr-drill.json") == b'{"passed": true}'
    with pytest.raises(StoreError, match="not one of ours"):
        await original.write_backup_extra(BACKUP, "_etcd_backup.meta", b"{}")
    with pytest.raises(StoreError, match="not one of ours"):
        await original.read_backup_extra(BACKUP, "etcd.backup.gz")
    await original.delete_backup(BACKUP)
    with pytest.raises(StoreError, match="not in"):
        await original.write_backup_extra(BACKUP, "etcdmgr-drill.json", b"{}")
    assert not (original.root / BACKUP).exists()
