"""The backup store contract, run over file:// and each object store against a local server
(moto's S3, Azurite's Blob): the original's bytes, listing rules, atomicity, claims, commands and
bad input, each object read and written behind the store's back as the original program or an
operator would.

GCS has no emulator here that accepts obstore's uploads (see test_object_store_errors.py for
what is tested of gs://: construction, credentials and error lines).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from object_servers import RawStore, Server, unique_prefix

from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command, RestoreBackup
from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import BackupName
from etcdmgr.store import BackupStore, FileStore, StoreError
from etcdmgr.store.object_store import ObjectStore
from etcdmgr.store.urls import object_store_settings

ORIGINAL = Path(__file__).parent.parent / "fixtures" / "original_store"
BACKUP = "2019-01-14T15:26:45Z-000001"
COMMAND = "2019-01-14T15:30:00Z-000000"
SPEC = ClusterSpec(member_count=3, etcd_version="3.4.13")


def fixture_bytes(rel: str) -> bytes:
    return (ORIGINAL / rel).read_bytes()


class FolderRaw(RawStore):
    """The same operations on a store folder."""

    def __init__(self, root: Path) -> None:
        super().__init__(None, f"file://{root}")
        self.root = root

    def put(self, key: str, data: bytes) -> None:
        (self.root / key).parent.mkdir(parents=True, exist_ok=True)
        (self.root / key).write_bytes(data)

    def get(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def keys(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())


@dataclass
class Backend:
    kind: str
    raw: RawStore
    make: Callable[[], BackupStore]  # a new store object on the same store

    @property
    def url(self) -> str:
        return self.raw.url


@pytest.fixture(params=["file", "s3", "azure"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    if request.param == "file":
        root = tmp_path / "store"
        return Backend("file", FolderRaw(root), lambda: FileStore(root, f"file://{root}"))
    server: Server = request.getfixturevalue("moto_server" if request.param == "s3" else "azurite_server")
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    prefix = unique_prefix()
    settings = object_store_settings(server.url(prefix), "backup store", StoreError)
    assert settings is not None
    # No caching between calls here: the contract is about what the store holds.
    return Backend(request.param, server.raw(prefix), lambda: ObjectStore(settings, poll_interval=0))


@pytest.fixture
def store(backend: Backend) -> BackupStore:
    return backend.make()


@pytest.fixture
def original(backend: Backend) -> BackupStore:
    """The store as the original program leaves it (its files uploaded as they are)."""
    if isinstance(backend.raw, FolderRaw):
        shutil.copytree(ORIGINAL, backend.raw.root)
    else:
        backend.raw.upload_tree(ORIGINAL)
    return backend.make()


# -- reading what the original wrote, writing the same bytes ----------------------------------


async def test_reads_the_original_store(original: BackupStore, tmp_path: Path) -> None:
    assert await original.read_spec() == SPEC
    assert await original.read_created() == 1547479605123456789
    listing = await original.list_commands()
    assert listing.broken == {}
    assert listing.commands == [
        Command(name=COMMAND, timestamp=1547479800123456789, restore_backup=RestoreBackup(SPEC, BACKUP))
    ]
    assert await original.list_backups() == [BACKUP]
    info = await original.read_backup_info(BACKUP)
    assert info == BackupInfo(etcd_version="3.4.13", timestamp=1547479605, cluster_spec=SPEC)
    assert info.checksums == {}
    dest = await original.fetch_backup_file(BACKUP, "etcd.backup.gz", tmp_path / "out" / "db.gz")
    assert dest.read_bytes() == fixture_bytes(f"{BACKUP}/etcd.backup.gz")


async def test_the_original_store_round_trips(original: BackupStore, backend: Backend, tmp_path: Path) -> None:
    """Read through etcdmgr, written back through etcdmgr into a new prefix: the same bytes."""
    copy = FileStore(tmp_path / "copy", f"file://{tmp_path / 'copy'}")
    await copy.write_spec(await original.read_spec() or SPEC)
    await copy.write_created(await original.read_created() or 0)
    await copy.add_command((await original.list_commands()).commands[0])
    data = await original.fetch_backup_file(BACKUP, "etcd.backup.gz", tmp_path / "db.gz")
    await copy.write_backup(BACKUP, {"etcd.backup.gz": data}, await original.read_backup_info(BACKUP))
    for rel in (
        "control/etcd-cluster-spec",
        "control/etcd-cluster-created",
        f"control/{COMMAND}/_command.json",
        f"{BACKUP}/_etcd_backup.meta",
        f"{BACKUP}/etcd.backup.gz",
    ):
        assert (copy.root / rel).read_bytes() == fixture_bytes(rel), rel
        assert backend.raw.get(rel) == fixture_bytes(rel), rel


async def test_writes_the_original_bytes(store: BackupStore, backend: Backend) -> None:
    await store.write_spec(SPEC)
    await store.write_created(1547479605123456789)
    cmd = Command(name=None, timestamp=1547479800123456789, restore_backup=RestoreBackup(SPEC, BACKUP))
    assert await store.add_command(cmd) == COMMAND
    src = ORIGINAL / BACKUP / "etcd.backup.gz"
    info = BackupInfo(etcd_version="3.4.13", timestamp=1547479605, cluster_spec=SPEC)
    written = await store.write_backup(BACKUP, {"etcd.backup.gz": src}, info)
    for rel in (
        "control/etcd-cluster-spec",
        "control/etcd-cluster-created",
        f"control/{COMMAND}/_command.json",
        f"{BACKUP}/_etcd_backup.meta",
        f"{BACKUP}/etcd.backup.gz",
    ):
        assert backend.raw.get(rel) == fixture_bytes(rel), rel
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert written.checksums == {"etcd.backup.gz": digest}
    assert backend.raw.get(f"{BACKUP}/SHA256SUMS") == f"{digest}  etcd.backup.gz\n".encode()
    assert (await backend.make().read_backup_info(BACKUP)).checksums == {"etcd.backup.gz": digest}
    assert [k for k in backend.raw.keys() if k.startswith(BACKUP)] == [
        f"{BACKUP}/SHA256SUMS",
        f"{BACKUP}/_etcd_backup.meta",
        f"{BACKUP}/etcd.backup.gz",
    ]


# -- listing and atomicity -------------------------------------------------------------------


async def test_lists_only_complete_backups_with_valid_names(original: BackupStore, backend: Backend) -> None:
    backend.raw.put("2019-01-14T16:00:00Z-000001/etcd.backup.gz", b"partial")  # meta never written
    backend.raw.put("not-a-backup/_etcd_backup.meta", b"{}")
    assert await backend.make().list_backups() == [BACKUP]


async def test_lists_backups_oldest_first(store: BackupStore, tmp_path: Path) -> None:
    src = tmp_path / "db.gz"
    src.write_bytes(b"x")
    names = ["2020-01-02T00:00:00Z-000001", "2019-12-31T23:59:59Z-000002", "2019-12-31T23:59:59Z-000001"]
    for name in names:
        await store.write_backup(name, {"etcd.backup.gz": src}, BackupInfo("3.5.9", 1))
    assert await store.list_backups() == sorted(names)


async def test_a_failed_backup_write_leaves_nothing(store: BackupStore, backend: Backend, tmp_path: Path) -> None:
    good = tmp_path / "db.gz"
    good.write_bytes(b"data")
    files = {"a.gz": good, "b.gz": tmp_path / "missing"}
    with pytest.raises(StoreError, match=f"cannot write backup {BACKUP} to .*missing"):
        await store.write_backup(BACKUP, files, BackupInfo("3.5.9", 1))
    assert await store.list_backups() == []
    assert [k for k in backend.raw.keys() if k.startswith(BACKUP)] == []


async def test_data_without_meta_is_no_backup(store: BackupStore, backend: Backend) -> None:
    # What a crash between the data and the meta leaves behind (nothing removes it then).
    backend.raw.put(f"{BACKUP}/etcd.backup.gz", b"complete data")
    assert await store.list_backups() == []
    with pytest.raises(StoreError, match="no backup named"):
        await store.read_backup_info(BACKUP)
    when = datetime(2019, 1, 14, 15, 26, 45, tzinfo=UTC)
    assert await store.new_backup_name(when) == "2019-01-14T15:26:45Z-000002"


async def test_write_backup_refuses_existing_and_bad_names(store: BackupStore, tmp_path: Path) -> None:
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


async def test_new_backup_names_skip_used_ones(store: BackupStore, backend: Backend) -> None:
    now = datetime(2019, 1, 14, 15, 26, 45, 900000, tzinfo=UTC)
    assert await store.new_backup_name(now) == BACKUP
    for name in (BACKUP, "2019-01-14T15:26:45Z-000003", "2019-01-14T15:26:46Z-000007"):
        backend.raw.put(f"{name}/etcd.backup.gz", b"half written")  # counts as used too
    assert await store.new_backup_name(now) == "2019-01-14T15:26:45Z-000004"
    earlier = await store.new_backup_name(datetime(2019, 1, 14, 15, 26, 44, tzinfo=UTC))
    assert earlier == "2019-01-14T15:26:44Z-000001"


async def test_fetch_verifies_the_checksum(store: BackupStore, backend: Backend, tmp_path: Path) -> None:
    src = tmp_path / "db.gz"
    src.write_bytes(b"good")
    await store.write_backup(BACKUP, {"etcd.backup.gz": src}, BackupInfo("3.5.9", 1))
    backend.raw.put(f"{BACKUP}/etcd.backup.gz", b"bad!")
    dest = tmp_path / "restore" / "db.gz"
    with pytest.raises(StoreError, match="checksum mismatch"):
        await store.fetch_backup_file(BACKUP, "etcd.backup.gz", dest)
    assert list(dest.parent.iterdir()) == []
    with pytest.raises(StoreError, match="has no file"):
        await store.fetch_backup_file(BACKUP, "other.gz", dest)


async def test_a_backup_file_streams_to_a_sink_and_its_checksum_is_checked_after(
    store: BackupStore, backend: Backend, tmp_path: Path
) -> None:
    src = tmp_path / "db.gz"
    src.write_bytes(b"good" * 100_000)
    await store.write_backup(BACKUP, {"etcd.backup.gz": src}, BackupInfo("3.5.9", 1))
    chunks: list[bytes] = []
    await store.read_backup_file(BACKUP, "etcd.backup.gz", chunks.append)
    assert b"".join(chunks) == src.read_bytes()
    backend.raw.put(f"{BACKUP}/etcd.backup.gz", b"bad!")
    with pytest.raises(StoreError, match="checksum mismatch"):
        await store.read_backup_file(BACKUP, "etcd.backup.gz", chunks.append)
    with pytest.raises(StoreError, match="has no file"):
        await store.read_backup_file(BACKUP, "other.gz", chunks.append)


async def test_delete_backup_removes_every_object(original: BackupStore, backend: Backend) -> None:
    await original.delete_backup(BACKUP)
    assert [k for k in backend.raw.keys() if k.startswith(BACKUP)] == []
    assert await original.list_backups() == []
    with pytest.raises(StoreError, match=f"no backup named {BACKUP}"):
        await original.read_backup_info(BACKUP)


@pytest.mark.parametrize("name", ["", ".", "..", "../control", "/etc", "a/b", ".hidden"])
async def test_unsafe_names_refused(original: BackupStore, name: str, tmp_path: Path) -> None:
    for call in (original.read_backup_info, original.delete_backup, original.remove_command):
        with pytest.raises(StoreError, match="single file name"):
            await call(name)
    with pytest.raises(StoreError, match="single file name"):
        await original.fetch_backup_file(BACKUP, name, tmp_path / "x")


# -- absent, corrupt and vanished objects -----------------------------------------------------


async def test_an_empty_store_reads_as_new(store: BackupStore) -> None:
    assert await store.read_spec() is None
    assert await store.read_created() is None
    assert (await store.list_commands()).commands == []
    assert await store.list_backups() == []


async def test_a_corrupt_spec_names_the_object(original: BackupStore, backend: Backend) -> None:
    key = "control/etcd-cluster-spec"
    backend.raw.put(key, b'{"memberCount": "three"')
    with pytest.raises(InvalidData, match="etcd-cluster-spec: not valid JSON"):
        await original.read_spec()
    backend.raw.put(key, b'{"memberCount": "three"}')
    with pytest.raises(InvalidData, match="etcd-cluster-spec: cluster spec: field 'memberCount'"):
        await original.read_spec()
    backend.raw.put(key, b"")
    with pytest.raises(InvalidData, match="is empty"):
        await original.read_spec()


async def test_created_marker_forms(original: BackupStore, backend: Backend) -> None:
    backend.raw.put("control/etcd-cluster-created", b"{}")  # the original's zero timestamp: still created
    assert await original.read_created() == 0
    backend.raw.put("control/etcd-cluster-created", b"garbage")
    with pytest.raises(InvalidData, match="etcd-cluster-created"):
        await original.read_created()


async def test_a_spec_or_marker_removed_after_it_was_read_is_an_error(
    original: BackupStore, backend: Backend
) -> None:
    assert await original.read_spec() == SPEC
    assert await original.read_created() is not None
    backend.raw.delete("control/etcd-cluster-spec")
    backend.raw.delete("control/etcd-cluster-created")
    with pytest.raises(StoreError, match=r"cluster spec .* has gone away"):
        await original.read_spec()
    with pytest.raises(StoreError, match=r"created marker .* has gone away"):
        await original.read_created()
    fresh = backend.make()  # a ctl run, a restarted daemon: absent, not an error
    assert await fresh.read_spec() is None
    assert await fresh.read_created() is None


# -- the created marker and claims --------------------------------------------------------------


async def test_the_created_marker_is_created_once(store: BackupStore, backend: Backend) -> None:
    await store.write_spec(SPEC)
    assert await store.check_create_if_absent() is None
    assert await store.create_created_marker(5)
    assert not await backend.make().create_created_marker(6)
    assert await backend.make().read_created() == 5
    await store.write_created(7)  # a restore rewrites it under its claim
    assert await backend.make().read_created() == 7


async def test_claims_one_wins_and_only_in_a_command_folder(store: BackupStore, backend: Backend) -> None:
    await store.write_spec(SPEC)
    name = await store.add_command(Command("", 1_000_000_000, RestoreBackup(SPEC, BACKUP)))
    key = f"control/{name}/etcdmgr-claim.json"
    assert await store.claim(key, b"first")
    assert not await backend.make().claim(key, b"second")
    assert await store.read_claim(key) == b"first"
    await backend.make().write_claim(key, b"taken over")
    assert await store.read_claim(key) == b"taken over"
    assert await store.read_claim("control/2030-01-01T00:00:00Z-000000/etcdmgr-claim.json") is None
    with pytest.raises(StoreError):
        await store.claim("control/2030-01-01T00:00:00Z-000000/etcdmgr-claim.json", b"x")
    assert not [k for k in backend.raw.keys() if k.startswith("control/2030")]


# -- commands ----------------------------------------------------------------------------------


async def test_a_corrupt_command_is_skipped_and_reported(original: BackupStore, backend: Backend) -> None:
    bad = "2019-01-14T15:00:00Z-000000"
    backend.raw.put(f"control/{bad}/_command.json", b"{not json")
    listing = await original.list_commands()
    assert [c.name for c in listing.commands] == [COMMAND]
    assert list(listing.broken) == [bad]
    assert listing.problems[0].startswith(f"skipping command {bad}: ")
    assert "_command.json: not valid JSON" in listing.problems[0]
    await original.remove_command(bad)
    assert (await original.list_commands()).broken == {}


async def test_commands_run_in_timestamp_order_and_can_be_removed(store: BackupStore, backend: Backend) -> None:
    a, b = "2033-05-18T03:00:00Z-000001", "2033-05-18T03:00:00Z-000002"
    later = Command(name=None, timestamp=2_000_000_000_500_000_000, restore_backup=RestoreBackup(SPEC, b))
    earlier = Command(name=None, timestamp=2_000_000_000_100_000_000, restore_backup=RestoreBackup(SPEC, a))
    first = await store.add_command(later)
    second = await store.add_command(earlier)
    assert (first, second) == ("2033-05-18T03:33:20Z-000000", "2033-05-18T03:33:20Z-000001")
    listing = await store.list_commands()
    assert [c.name for c in listing.commands] == [second, first]
    await store.remove_command(second)
    assert [c.name for c in (await store.list_commands()).commands] == [first]
    assert not [k for k in backend.raw.keys() if k.startswith(f"control/{second}")]


async def test_a_failed_command_is_listed_apart_and_its_file_untouched(store: BackupStore, backend: Backend) -> None:
    await store.write_spec(SPEC)
    first = await store.add_command(Command("", 1_000_000_000, RestoreBackup(SPEC, BACKUP)))
    second = await store.add_command(Command("", 2_000_000_000, RestoreBackup(SPEC, BACKUP)))
    command_bytes = backend.raw.get(f"control/{first}/_command.json")
    await store.mark_command_failed(first, "restore timed out", datetime(2024, 6, 15, 12, 0, tzinfo=UTC))
    listing = await backend.make().list_commands()
    assert [c.name for c in listing.commands] == [second]
    assert listing.failed[first].reason == "restore timed out"
    assert listing.failed[first].failed_at == "2024-06-15T12:00:00Z"
    assert backend.raw.get(f"control/{first}/_command.json") == command_bytes
    assert backend.raw.get(f"control/{first}/etcdmgr-failed.json") == (
        b'{"reason":"restore timed out","time":"2024-06-15T12:00:00Z"}'
    )
    await store.remove_command(first)
    assert not [k for k in backend.raw.keys() if k.startswith(f"control/{first}")]


async def test_marking_a_command_that_is_gone_creates_nothing(store: BackupStore, backend: Backend) -> None:
    await store.write_spec(SPEC)
    with pytest.raises(StoreError, match="does not exist"):
        await store.mark_command_failed("2024-06-15T12:00:00Z-000000", "x", datetime.now(UTC))
    assert not [k for k in backend.raw.keys() if k.startswith("control/2024")]


async def test_unknown_kinds_are_listed_but_not_runnable(store: BackupStore) -> None:
    await store.write_spec(SPEC)
    unknown = await store.add_command(Command("", 1_000_000_000))  # e.g. a newer program's kind
    restore = await store.add_command(Command("", 2_000_000_000, RestoreBackup(SPEC, BACKUP)))
    listing = await store.list_commands()
    assert [c.name for c in listing.commands] == [unknown, restore]
    assert [c.name for c in listing.runnable] == [restore]


# -- files of ours: the status, backup requests, a backup's extra files ------------------------


async def test_the_status_is_written_and_read_back(store: BackupStore) -> None:
    assert await store.read_status() is None
    await store.write_status(b'{"leader": "a"}')
    await store.write_status(b'{"leader": "b"}')
    assert await store.read_status() == b'{"leader": "b"}'


async def test_backup_requests_are_listed_in_order_and_removed(backend: Backend, store: BackupStore) -> None:
    noon = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)
    first = await store.request_backup(noon)
    second = await store.request_backup(noon)  # the same second: its own name
    assert first != second
    assert await backend.make().list_backup_requests() == [first, second]
    assert (await backend.make().list_commands()).commands == [], "no command for the original to read"
    await store.remove_backup_requests([first])
    assert await backend.make().list_backup_requests() == [second]


async def test_extra_files_go_only_into_complete_backups(original: BackupStore) -> None:
    files = await original.backup_files(BACKUP)
    assert "etcd.backup.gz" in files and files["etcd.backup.gz"] > 0
    assert await original.read_backup_extra(BACKUP, "etcdmgr-drill.json") is None
    await original.write_backup_extra(BACKUP, "etcdmgr-drill.json", b"{}")
    assert await original.read_backup_extra(BACKUP, "etcdmgr-drill.json") == b"{}"
    assert await original.list_backups() == [BACKUP]
    with pytest.raises(StoreError):
        await original.write_backup_extra(BACKUP, "etcd.backup.gz", b"")  # not one of ours
    with pytest.raises(StoreError):
        await original.write_backup_extra(BackupName("2020-01-01T00:00:00Z-000001"), "etcdmgr-drill.json", b"{}")
