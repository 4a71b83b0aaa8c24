"""The store and discovery under faults: a store that is not there yet, one that goes away, one
that hangs, one that cannot be read; and the directory fsyncs that make removals durable."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from etcdmgr.discovery import DiscoveryError, FileDiscovery
from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command, RestoreBackup
from etcdmgr.model.peer import PeerEndpoint
from etcdmgr.store import FileStore, StoreError, open_store
from etcdmgr.store import file_store as file_store_module
from etcdmgr.util import atomic

SPEC = ClusterSpec(member_count=1, etcd_version="3.5.30")
BACKUP = "2024-06-15T12:00:00Z-000001"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "backups" / "main"


async def seed_store(root: Path, tmp_path: Path) -> None:
    """What `ctl configure-cluster` and one backup leave in a store."""
    writer = FileStore(root, f"file://{root}")
    await writer.write_spec(SPEC)
    await writer.write_created(1)
    data = tmp_path / "db.gz"
    data.write_bytes(b"snapshot")
    await writer.write_backup(BACKUP, {"etcd.backup.gz": data}, BackupInfo("3.5.30", 1))


@pytest.fixture
def fifo_release() -> Iterator[list[Path]]:
    """FIFOs the test made readers block on; opening each for writing at the end lets the
    abandoned reader threads finish."""
    fifos: list[Path] = []
    yield fifos
    for fifo in fifos:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # no reader left


# -- a store that does not exist yet, and one that goes away ----------------------------------


async def test_a_store_not_created_yet_reads_as_empty(root: Path) -> None:
    # Daemons start before `ctl configure-cluster` creates the store.
    store = FileStore(root, f"file://{root}")
    assert await store.read_spec() is None
    assert await store.read_created() is None
    assert (await store.list_commands()).commands == []
    assert await store.list_backups() == []
    # ... and pick the store up once ctl has created it.
    await FileStore(root, f"file://{root}").write_spec(SPEC)
    assert await store.read_spec() == SPEC


async def test_a_store_moved_away_after_a_spec_was_read_is_an_error(root: Path, tmp_path: Path) -> None:
    await seed_store(root, tmp_path)
    store = FileStore(root, f"file://{root}")
    assert await store.read_spec() == SPEC
    assert await store.list_backups() == [BACKUP]

    away = tmp_path / "moved-away"
    os.rename(root, away)
    for call in (store.read_spec, store.read_created, store.list_backups, store.list_commands):
        with pytest.raises(StoreError, match=r"store folder .* has gone away"):
            await call()
    # Writes neither: a backup or spec written now would recreate an empty store where the
    # real one is to come back.
    data = tmp_path / "db.gz"
    with pytest.raises(StoreError, match="has gone away"):
        await store.write_backup(
            "2024-06-15T13:00:00Z-000001", {"etcd.backup.gz": data}, BackupInfo("3.5.30", 1)
        )
    with pytest.raises(StoreError, match="has gone away"):
        await store.write_spec(SPEC)
    with pytest.raises(StoreError, match="has gone away"):
        await store.create_created_marker(2)
    assert os.listdir(root.parent) == [], "nothing recreated the store folder"

    os.rename(away, root)
    assert await store.read_spec() == SPEC
    assert await store.list_backups() == [BACKUP]


async def test_a_mount_point_left_empty_is_an_error(root: Path, tmp_path: Path) -> None:
    # A lost mount leaves its (empty) mount point behind: the control folder is gone.
    await seed_store(root, tmp_path)
    store = FileStore(root, f"file://{root}")
    assert await store.read_spec() == SPEC
    shutil.rmtree(root)
    os.mkdir(root)
    for call in (store.read_spec, store.list_backups, store.list_commands):
        with pytest.raises(StoreError, match=r"control folder .* has gone away"):
            await call()


async def test_a_spec_or_marker_removed_after_it_was_read_is_an_error(root: Path, tmp_path: Path) -> None:
    await seed_store(root, tmp_path)
    store = FileStore(root, f"file://{root}")
    assert await store.read_spec() == SPEC
    assert await store.read_created() == 1
    (root / "control" / "etcd-cluster-spec").unlink()
    (root / "control" / "etcd-cluster-created").unlink()
    with pytest.raises(StoreError, match=r"cluster spec .* has gone away"):
        await store.read_spec()
    with pytest.raises(StoreError, match=r"created marker .* has gone away"):
        await store.read_created()
    # A store object that never read them (a ctl run, a restarted daemon) says they are absent.
    fresh = FileStore(root, f"file://{root}")
    assert await fresh.read_spec() is None
    assert await fresh.read_created() is None


async def test_a_store_that_cannot_be_listed_is_an_error(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_store(root, tmp_path)
    store = FileStore(root, f"file://{root}")

    def refuse(path: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(file_store_module.os, "scandir", refuse)
    with pytest.raises(StoreError, match=r"cannot list .*Permission denied"):
        await store.list_backups()
    with pytest.raises(StoreError, match="cannot list"):
        await store.list_commands()


async def test_a_store_path_that_is_a_file_is_an_error(root: Path) -> None:
    os.makedirs(root.parent)
    os.close(os.open(root, os.O_CREAT | os.O_WRONLY))  # a file where the folder should be
    store = FileStore(root, f"file://{root}")
    with pytest.raises(StoreError, match="is not a folder"):
        await store.list_backups()


# -- a store that hangs -------------------------------------------------------------------------


async def test_a_hung_read_fails_at_the_deadline_without_freezing_trio(
    root: Path, fifo_release: list[Path]
) -> None:
    (root / "control").mkdir(parents=True)
    fifo = root / "control" / "etcd-cluster-spec"
    os.mkfifo(fifo)  # open() for reading blocks until a writer comes: a hung mount
    fifo_release.append(fifo)
    store = open_store(f"file://{root}", timeout=0.5)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.sleep(0.05)
            ticks += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        started = trio.current_time()
        with pytest.raises(StoreError, match=r"did not answer within 0.5s \(reading the cluster spec\)"):
            await store.read_spec()
        elapsed = trio.current_time() - started
        nursery.cancel_scope.cancel()
    assert 0.5 <= elapsed < 2.0
    assert ticks >= 5, "the event loop kept running while the read hung"


async def test_hung_calls_hold_only_a_few_worker_threads(root: Path, fifo_release: list[Path]) -> None:
    (root / "control").mkdir(parents=True)
    fifo = root / "control" / "etcd-cluster-spec"
    os.mkfifo(fifo)
    fifo_release.append(fifo)
    store = FileStore(root, f"file://{root}", timeout=0.3)
    failures = 0

    async def hung_read() -> None:
        nonlocal failures
        with pytest.raises(StoreError, match="did not answer"):
            await store.read_spec()
        failures += 1

    async with trio.open_nursery() as nursery:
        for _ in range(3 * file_store_module.THREADS):
            nursery.start_soon(hung_read)
    assert failures == 3 * file_store_module.THREADS
    # The rest of the daemon still gets worker threads.
    with trio.fail_after(2):
        assert await trio.to_thread.run_sync(lambda: 42) == 42


async def test_a_hung_discovery_poll_fails_at_the_deadline(tmp_path: Path) -> None:
    discovery = FileDiscovery(f"file://{tmp_path}", timeout=0.3)
    hang = threading.Event()
    discovery._poll = lambda: hang.wait() and {}  # type: ignore[method-assign]
    try:
        with trio.fail_after(2), pytest.raises(DiscoveryError, match=r"did not answer within 0.3s"):
            await discovery.poll()
    finally:
        hang.set()


async def test_discovery_skips_fifos_and_reports_a_folder_gone_away(
    tmp_path: Path, fifo_release: list[Path]
) -> None:
    folder = tmp_path / "discovery"
    discovery = FileDiscovery(f"file://{folder}", timeout=1)
    await discovery.publish("a", [PeerEndpoint("127.0.0.1", 8000)])
    os.mkfifo(folder / "b")  # reading it would block
    fifo_release.append(folder / "b")
    assert await discovery.poll() == {"a": [PeerEndpoint("127.0.0.1", 8000)]}
    shutil.rmtree(folder)
    with pytest.raises(DiscoveryError, match="has gone away"):
        await discovery.poll()


# -- failed commands ---------------------------------------------------------------------------


async def test_a_failed_command_is_listed_apart_and_its_file_untouched(root: Path, tmp_path: Path) -> None:
    await seed_store(root, tmp_path)
    store = FileStore(root, f"file://{root}")
    first = await store.add_command(Command("", 1_000_000_000, RestoreBackup(SPEC, BACKUP)))
    second = await store.add_command(Command("", 2_000_000_000, RestoreBackup(SPEC, BACKUP)))
    command_bytes = (root / "control" / first / "_command.json").read_bytes()
    await store.mark_command_failed(first, "restore timed out", datetime(2024, 6, 15, 12, 0, tzinfo=UTC))
    listing = await store.list_commands()
    assert [c.name for c in listing.commands] == [second]
    assert list(listing.failed) == [first]
    assert listing.failed[first].reason == "restore timed out"
    assert listing.failed[first].failed_at == "2024-06-15T12:00:00Z"
    assert listing.failed[first].command.restore_backup == RestoreBackup(SPEC, BACKUP)
    # The original reads _command.json strictly: the mark lives in a file of our own.
    assert (root / "control" / first / "_command.json").read_bytes() == command_bytes
    assert (root / "control" / first / "etcdmgr-failed.json").read_bytes() == (
        b'{"reason":"restore timed out","time":"2024-06-15T12:00:00Z"}'
    )
    assert listing.skipped == [
        f"skipping failed command {first} (failed 2024-06-15T12:00:00Z: restore timed out); "
        f"remove it with `ctl delete-command {first}`"
    ]
    await store.remove_command(first)
    assert not (root / "control" / first).exists()


async def test_marking_a_command_that_is_gone_creates_nothing(root: Path, tmp_path: Path) -> None:
    await seed_store(root, tmp_path)
    store = FileStore(root, f"file://{root}")
    with pytest.raises(StoreError, match="does not exist"):
        await store.mark_command_failed("2024-06-15T12:00:00Z-000000", "x", datetime.now(UTC))
    assert not (root / "control" / "2024-06-15T12:00:00Z-000000").exists()


async def test_unknown_kinds_are_listed_but_not_runnable(root: Path, tmp_path: Path) -> None:
    await seed_store(root, tmp_path)
    store = FileStore(root, f"file://{root}")
    unknown = await store.add_command(Command("", 1_000_000_000))  # e.g. a newer program's kind
    restore = await store.add_command(Command("", 2_000_000_000, RestoreBackup(SPEC, BACKUP)))
    listing = await store.list_commands()
    assert [c.name for c in listing.commands] == [unknown, restore]
    assert [c.name for c in listing.runnable] == [restore]
    assert listing.skipped == [f"skipping command {unknown}: not a kind this program knows"]


# -- durable removals --------------------------------------------------------------------------


async def test_renames_and_removals_fsync_their_folder(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_store(root, tmp_path)
    store = FileStore(root, f"file://{root}")
    name = await store.add_command(Command("", 1_000_000_000, RestoreBackup(SPEC, BACKUP)))
    discovery = FileDiscovery(f"file://{tmp_path / 'discovery'}")
    await discovery.publish("a", [])
    synced: list[Path] = []

    def spy(path: Path) -> None:
        synced.append(path)

    monkeypatch.setattr(atomic, "fsync_dir", spy)
    monkeypatch.setattr(file_store_module, "fsync_dir", spy)

    await store.write_spec(SPEC)
    assert synced == [root / "control"], "the rename of the spec"
    synced.clear()
    await store.remove_command(name)
    assert synced == [root / "control" / name, root / "control"], (
        "the command file's unlink, then the folder's"
    )
    synced.clear()
    await store.delete_backup(BACKUP)
    assert synced == [root / BACKUP, root], "the meta's unlink, then the folder's"
    synced.clear()
    await store.create_created_marker(5)
    assert synced == [], "nothing is written when the marker exists"
    (root / "control" / "etcd-cluster-created").unlink()
    await store.create_created_marker(5)
    assert synced == [root / "control"], "the link of a claim"
    synced.clear()
    await discovery.withdraw("a")
    assert synced == [tmp_path / "discovery"], "the unlink of a discovery record"
