"""The file:// backup store: original-compatible bytes, listing rules, atomicity, bad input."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command, RestoreBackup
from etcdmgr.model.errors import InvalidData
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


async def test_reads_original_spec_and_marker(original: FileStore) -> None:
    assert await original.read_spec() == SPEC
    assert await original.read_created() == 1547479605123456789


async def test_reads_original_command(original: FileStore) -> None:
    listing = await original.list_commands()
    assert listing.broken == {}
    assert listing.commands == [
        Command(
            name=COMMAND,
            timestamp=1547479800123456789,
            restore_backup=RestoreBackup(cluster_spec=SPEC, backup=BACKUP),
        )
    ]


async def test_reads_original_backup(original: FileStore, tmp_path: Path) -> None:
    assert await original.list_backups() == [BACKUP]
    info = await original.read_backup_info(BACKUP)
    assert info == BackupInfo(etcd_version="3.4.13", timestamp=1547479605, cluster_spec=SPEC)
    assert info.checksums == {}  # the original writes none: nothing to verify
    dest = await original.fetch_backup_file(BACKUP, "etcd.backup.gz", tmp_path / "out" / "db.gz")
    assert dest.read_bytes() == fixture_bytes(f"{BACKUP}/etcd.backup.gz")


async def test_reads_protojson_spacing_and_numeric_int64(store: FileStore) -> None:
    # Newer originals use protojson, which may put two spaces after ':'; jsonpb accepts numbers too.
    (store.root / "control").mkdir(parents=True)
    (store.root / "control/etcd-cluster-spec").write_bytes(
        b'{\n  "memberCount":  1,\n  "etcdVersion":  "3.5.9"\n}'
    )
    assert await store.read_spec() == ClusterSpec(member_count=1, etcd_version="3.5.9")
    assert BackupInfo.from_json({"timestamp": 12, "etcdVersion": "3.5.9"}).timestamp == 12


# -- writing the same bytes --------------------------------------------------------------------


async def test_writes_spec_and_marker_bytes(store: FileStore) -> None:
    await store.write_spec(SPEC)
    await store.write_created(1547479605123456789)
    control = store.root / "control"
    assert (control / "etcd-cluster-spec").read_bytes() == fixture_bytes("control/etcd-cluster-spec")
    assert (control / "etcd-cluster-created").read_bytes() == fixture_bytes("control/etcd-cluster-created")


async def test_writes_command_bytes(store: FileStore) -> None:
    cmd = Command(name=None, timestamp=1547479800123456789, restore_backup=RestoreBackup(SPEC, BACKUP))
    name = await store.add_command(cmd)
    assert name == COMMAND
    written = (store.root / "control" / name / "_command.json").read_bytes()
    assert written == fixture_bytes(f"control/{COMMAND}/_command.json")


async def test_writes_backup_bytes_meta_last_with_checksums(store: FileStore) -> None:
    src = ORIGINAL / BACKUP / "etcd.backup.gz"
    info = BackupInfo(etcd_version="3.4.13", timestamp=1547479605, cluster_spec=SPEC)
    written = await store.write_backup(BACKUP, {"etcd.backup.gz": src}, info)
    folder = store.root / BACKUP
    assert (folder / "_etcd_backup.meta").read_bytes() == fixture_bytes(f"{BACKUP}/_etcd_backup.meta")
    assert (folder / "etcd.backup.gz").read_bytes() == src.read_bytes()
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert written.checksums == {"etcd.backup.gz": digest}
    assert (folder / "SHA256SUMS").read_text() == f"{digest}  etcd.backup.gz\n"
    assert (await store.read_backup_info(BACKUP)).checksums == {"etcd.backup.gz": digest}
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "_etcd_backup.meta", "etcd.backup.gz"]


# -- listing and atomicity -------------------------------------------------------------------


async def test_lists_only_complete_backups_with_valid_names(original: FileStore) -> None:
    root = original.root
    (root / "2019-01-14T16:00:00Z-000001").mkdir()  # data copied, meta never written
    (root / "2019-01-14T16:00:00Z-000001" / "etcd.backup.gz").write_bytes(b"partial")
    (root / "not-a-backup").mkdir()
    (root / "not-a-backup" / "_etcd_backup.meta").write_bytes(b"{}")
    (root / ".2019-01-14T17:00:00Z-000001").mkdir()
    assert await original.list_backups() == [BACKUP]


async def test_lists_backups_oldest_first(store: FileStore, tmp_path: Path) -> None:
    src = tmp_path / "db.gz"
    src.write_bytes(b"x")
    names = ["2020-01-02T00:00:00Z-000001", "2019-12-31T23:59:59Z-000002", "2019-12-31T23:59:59Z-000001"]
    for name in names:
        await store.write_backup(name, {"etcd.backup.gz": src}, BackupInfo("3.5.9", 1))
    assert await store.list_backups() == sorted(names)


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


async def test_write_backup_refuses_existing_and_bad_names(store: FileStore, tmp_path: Path) -> None:
    src = tmp_path / "db.gz"
    src.write_bytes(b"x")
    info = BackupInfo("3.5.9", 1)
    await store.write_backup(BACKUP, {"etcd.backup.gz": src}, info)
    with pytest.raises(StoreError, match="already exists"):
        await store.write_backup(BACKUP, {"etcd.backup.gz": src}, info)
    with pytest.raises(StoreError, match="invalid backup name"):
        await store.write_backup("../escape", {"etcd.backup.gz": src}, info)
    with pytest.raises(StoreError, match="reserved"):
        await store.write_backup("2020-01-01T00:00:00Z-000001", {"_etcd_backup.meta": src}, info)
    with pytest.raises(StoreError, match="single file name"):
        await store.write_backup("2020-01-01T00:00:00Z-000001", {"../x": src}, info)


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


async def test_fetch_verifies_checksum(store: FileStore, tmp_path: Path) -> None:
    src = tmp_path / "db.gz"
    src.write_bytes(b"good")
    await store.write_backup(BACKUP, {"etcd.backup.gz": src}, BackupInfo("3.5.9", 1))
    (store.root / BACKUP / "etcd.backup.gz").write_bytes(b"bad!")
    dest = tmp_path / "restore" / "db.gz"
    with pytest.raises(StoreError, match="checksum mismatch"):
        await store.fetch_backup_file(BACKUP, "etcd.backup.gz", dest)
    assert list(dest.parent.iterdir()) == []
    with pytest.raises(StoreError, match="has no file"):
        await store.fetch_backup_file(BACKUP, "other.gz", dest)


async def test_delete_backup_removes_every_file(original: FileStore) -> None:
    await original.delete_backup(BACKUP)
    assert not (original.root / BACKUP).exists()
    assert await original.list_backups() == []
    with pytest.raises(StoreError, match=f"no backup named {BACKUP}"):
        await original.read_backup_info(BACKUP)


@pytest.mark.parametrize("name", ["", ".", "..", "../control", "/etc", "a/b", ".hidden"])
async def test_unsafe_names_refused(original: FileStore, name: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="single file name"):
        await original.read_backup_info(name)
    with pytest.raises(StoreError, match="single file name"):
        await original.delete_backup(name)
    with pytest.raises(StoreError, match="single file name"):
        await original.remove_command(name)
    with pytest.raises(StoreError, match="single file name"):
        await original.fetch_backup_file(BACKUP, name, tmp_path / "x")


# -- absent and corrupt objects --------------------------------------------------------------


async def test_empty_store_reads_as_new(store: FileStore) -> None:
    assert await store.read_spec() is None
    assert await store.read_created() is None
    assert (await store.list_commands()).commands == []
    assert await store.list_backups() == []


async def test_corrupt_spec_names_the_file(original: FileStore) -> None:
    path = original.root / "control" / "etcd-cluster-spec"
    path.write_bytes(b'{"memberCount": "three"')
    with pytest.raises(InvalidData, match="etcd-cluster-spec: not valid JSON"):
        await original.read_spec()
    path.write_bytes(b'{"memberCount": "three"}')
    with pytest.raises(InvalidData, match="etcd-cluster-spec: cluster spec: field 'memberCount'"):
        await original.read_spec()
    path.write_bytes(b"")
    with pytest.raises(InvalidData, match="is empty"):
        await original.read_spec()


async def test_created_marker_forms(original: FileStore) -> None:
    path = original.root / "control" / "etcd-cluster-created"
    path.write_bytes(b"{}")  # what the original writes for a zero timestamp: still "created"
    assert await original.read_created() == 0
    path.write_bytes(b"garbage")
    with pytest.raises(InvalidData, match="etcd-cluster-created"):
        await original.read_created()


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


async def test_commands_run_in_timestamp_order_and_can_be_removed(store: FileStore) -> None:
    a, b = "2033-05-18T03:00:00Z-000001", "2033-05-18T03:00:00Z-000002"
    later = Command(name=None, timestamp=2_000_000_000_500_000_000, restore_backup=RestoreBackup(SPEC, b))
    earlier = Command(name=None, timestamp=2_000_000_000_100_000_000, restore_backup=RestoreBackup(SPEC, a))
    first = await store.add_command(later)
    second = await store.add_command(earlier)
    assert (first, second) == ("2033-05-18T03:33:20Z-000000", "2033-05-18T03:33:20Z-000001")
    listing = await store.list_commands()
    assert [(c.name, c.restore_backup and c.restore_backup.backup) for c in listing.commands] == [
        (second, a),
        (first, b),
    ]
    await store.remove_command(second)
    assert [c.name for c in (await store.list_commands()).commands] == [first]
    assert not (store.root / "control" / second).exists()


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
