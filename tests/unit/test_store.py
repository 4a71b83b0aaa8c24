"""What only the file:// backup store has: folders, temp files, empty folders and its URLs.

The contract every store meets (the original's bytes, listing, checksums, claims, commands, bad
names) is in test_store_contract.py, which runs over file:// too.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.store import FileStore, StoreError, open_store

ORIGINAL = Path(__file__).parent.parent / "fixtures" / "original_store"
BACKUP = "2019-01-14T15:26:45Z-000001"
COMMAND = "2019-01-14T15:30:00Z-000000"
SPEC = ClusterSpec(member_count=3, etcd_version="3.4.13")


def fixture_bytes(rel: str) -> bytes:
    return (ORIGINAL / rel).read_bytes()


@pytest.fixture
def original(tmp_path: Path) -> FileStore:
    """A copy of a store as the original program leaves it."""
    root = tmp_path / "store"
    shutil.copytree(ORIGINAL, root)
    return FileStore(root, f"file://{root}")


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    root = tmp_path / "store"
    return FileStore(root, f"file://{root}")


# -- reading what the original wrote ---------------------------------------------------------


async def test_reads_protojson_spacing_and_numeric_int64(store: FileStore) -> None:
    # Newer originals use protojson, which may put two spaces after ':'; jsonpb accepts numbers too.
    (store.root / "control").mkdir(parents=True)
    (store.root / "control/etcd-cluster-spec").write_bytes(
        b'{\n  "memberCount":  1,\n  "etcdVersion":  "3.5.9"\n}'
    )
    assert await store.read_spec() == ClusterSpec(member_count=1, etcd_version="3.5.9")
    assert BackupInfo.from_json({"timestamp": 12, "etcdVersion": "3.5.9"}).timestamp == 12


# -- listing and atomicity -------------------------------------------------------------------


async def test_lists_only_complete_backups_with_valid_names(original: FileStore) -> None:
    root = original.root
    (root / "2019-01-14T16:00:00Z-000001").mkdir()  # data copied, meta never written
    (root / "2019-01-14T16:00:00Z-000001" / "etcd.backup.gz").write_bytes(b"partial")
    (root / "not-a-backup").mkdir()
    (root / "not-a-backup" / "_etcd_backup.meta").write_bytes(b"{}")
    (root / ".2019-01-14T17:00:00Z-000001").mkdir()
    assert await original.list_backups() == [BACKUP]


async def test_failed_backup_write_is_never_listed(store: FileStore, tmp_path: Path) -> None:
    good = tmp_path / "db.gz"
    good.write_bytes(b"data")
    files = {"a.gz": good, "b.gz": tmp_path / "missing"}
    with pytest.raises(StoreError, match=f"cannot write backup {BACKUP} to file://.*missing"):
        await store.write_backup(BACKUP, files, BackupInfo("3.5.9", 1))
    assert await store.list_backups() == []
    assert not (store.root / BACKUP).exists()  # the copied file and temp files are cleaned up


async def test_a_crash_before_the_meta_leaves_nothing_listed(store: FileStore) -> None:
    # What a crash between the data and the meta leaves behind (nothing removes it then).
    (store.root / BACKUP).mkdir(parents=True)
    (store.root / BACKUP / "etcd.backup.gz").write_bytes(b"complete data")
    (store.root / BACKUP / "._etcd_backup.meta.x1.tmp").write_bytes(b'{\n  "etcdV')
    assert await store.list_backups() == []
    with pytest.raises(StoreError, match="no backup named"):
        await store.read_backup_info(BACKUP)
    assert await store.new_backup_name(datetime(2019, 1, 14, 15, 26, 45, tzinfo=UTC)) == (
        "2019-01-14T15:26:45Z-000002"
    )


async def test_new_backup_name_sequence(store: FileStore, tmp_path: Path) -> None:
    now = datetime(2019, 1, 14, 15, 26, 45, 900000, tzinfo=UTC)
    assert await store.new_backup_name(now) == BACKUP
    for name in (BACKUP, "2019-01-14T15:26:45Z-000003", "2019-01-14T15:26:46Z-000007"):
        (store.root / name).mkdir(parents=True)  # a half-written one counts as used too
    assert await store.new_backup_name(now) == "2019-01-14T15:26:45Z-000004"
    earlier = await store.new_backup_name(datetime(2019, 1, 14, 15, 26, 44, tzinfo=UTC))
    assert earlier == "2019-01-14T15:26:44Z-000001"
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.new_backup_name(datetime(2019, 1, 14))


# -- corrupt objects ---------------------------------------------------------------------------


async def test_corrupt_command_is_skipped_and_reported(original: FileStore) -> None:
    bad = "2019-01-14T15:00:00Z-000000"
    (original.root / "control" / bad).mkdir()
    (original.root / "control" / bad / "_command.json").write_bytes(b"{not json")
    (original.root / "control" / "empty-folder").mkdir()
    listing = await original.list_commands()
    assert [c.name for c in listing.commands] == [COMMAND]
    assert list(listing.broken) == [bad]
    assert len(listing.problems) == 1
    assert listing.problems[0].startswith(f"skipping command {bad}: ")
    assert "_command.json: not valid JSON" in listing.problems[0]
    await original.remove_command(bad)
    assert (await original.list_commands()).broken == {}


# -- URLs ------------------------------------------------------------------------------------


def test_open_store_file_urls(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    assert isinstance(store, FileStore)
    assert store.root == tmp_path
    assert store.url == f"file://{tmp_path}"
    bare = open_store(str(tmp_path))  # the original accepts a bare path too
    assert isinstance(bare, FileStore) and bare.root == tmp_path


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "no location given"),
        ("swift://container/cluster", "scheme 'swift' is not supported"),
        ("relative/dir", "scheme '(none)' is not supported"),
        ("file://relative/dir", "needs an absolute path"),
        ("file:///tmp/x?versioned=1", "no query"),
    ],
)
def test_open_store_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_store(url)
