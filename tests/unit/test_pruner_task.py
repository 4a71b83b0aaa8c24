"""In the daemon, retention runs in a task of its own: a backup only wakes it, so listing and
deleting thousands of backups never holds up the leader's decisions."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from etcdmgr.backup import Pruner
from etcdmgr.model.ids import BackupName
from etcdmgr.store import FileStore, StoreError
from etcdmgr.store.layout import META_FILE
from etcdmgr.store.retention import Retention

OLD = timedelta(days=3 * 365)  # past any retention


def add_backup(store: FileStore, age: timedelta, seq: int) -> str:
    name = f"{(datetime.now(UTC) - age).strftime('%Y-%m-%dT%H:%M:%S')}Z-{seq:06d}"
    (store.root / name).mkdir(parents=True)
    (store.root / name / META_FILE).write_text('{"etcdVersion": "3.5.30"}')
    return name


class StuckStore(FileStore):
    """A store whose listing hangs until released; it tells when `expect` backups are deleted."""

    def __init__(self, root: Path, expect: int) -> None:
        super().__init__(root, "file:///store")
        self.release = trio.Event()
        self.expect = expect
        self.deleted: list[BackupName] = []
        self.all_deleted = trio.Event()

    async def list_backups(self) -> list[BackupName]:
        await self.release.wait()
        return await super().list_backups()

    async def delete_backup(self, name: BackupName) -> None:
        await super().delete_backup(name)
        self.deleted.append(name)
        if len(self.deleted) == self.expect:
            self.all_deleted.set()


async def test_waking_the_pruner_returns_at_once_and_it_prunes_in_its_own_task(tmp_path: Path) -> None:
    store = StuckStore(tmp_path / "store", expect=2)
    for n in range(10):  # the newest ten are always kept
        add_backup(store, timedelta(minutes=n), 10 + n)
    old = [add_backup(store, OLD - timedelta(days=day), 20 + day) for day in range(3)]
    pruner = Pruner(store, Retention(hourly=timedelta(hours=1), daily=timedelta(days=1)))
    async with trio.open_nursery() as nursery:
        await nursery.start(pruner.run)
        pruner.wake()  # what a leader's backup does: not async, it never waits for the store
        await trio.sleep(0.1)
        assert store.deleted == []  # the pruner is still listing
        store.release.set()
        with trio.fail_after(10):
            await store.all_deleted.wait()
        nursery.cancel_scope.cancel()
    # The newest old day's earliest backup is kept: the daily retention counts days too.
    assert sorted(store.deleted) == sorted(old[:2])


class BrokenStore(FileStore):
    async def list_backups(self) -> list[BackupName]:
        raise StoreError("the store is down")


async def test_a_failed_pass_is_logged_and_the_task_keeps_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pruner = Pruner(BrokenStore(tmp_path / "store", "file:///store"), Retention(), every=0.0)
    with caplog.at_level(logging.WARNING, logger="etcdmgr.backup.retention"):
        async with trio.open_nursery() as nursery:
            await nursery.start(pruner.run)
            for _ in range(2):
                pruner.wake()
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    assert [r.getMessage() for r in caplog.records] == ["pruning old backups failed: the store is down"] * 2
