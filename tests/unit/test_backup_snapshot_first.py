"""A membership or version change that backs up first waits for the snapshot only: the leader
compresses and stores it in the background, and the planner meanwhile counts the snapshot as the
newest backup, so the change goes ahead in seconds and the next one does not back up again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from etcdmgr.backup import Pruner
from etcdmgr.controller.backoff import BackupAttempts
from etcdmgr.controller.backups import LATER_FROM, Backups
from etcdmgr.store import FileStore, StoreError
from etcdmgr.store.retention import Retention


class Steps:
    """Stands in for the snapshot and the storing: the storing waits until released."""

    def __init__(self, size: int = 1 << 30) -> None:
        self.size = size  # of the database
        self.release = trio.Event()
        self.stored: list[str] = []
        self.fail_with: Exception | None = None

    async def snapshot(self, view: Any, binaries: Any, endpoint: Any) -> tuple[Any, float]:
        await trio.sleep(2.0)  # a snapshot of a large database: seconds
        return type("Snap", (), {"endpoint": "http://m1:4001", "size": self.size})(), 60.0

    async def store(self, snap: Any, limit: float, why: str) -> Any:
        await self.release.wait()  # compressing a large database: much longer
        if self.fail_with is not None:
            raise self.fail_with
        self.stored.append(why)
        return type("Result", (), {"name": "2024-05-01T10:00:00Z-000001", "seconds": 1.0, "size": 1})()


def backups(tmp_path: Path, steps: Steps, monkeypatch: pytest.MonkeyPatch) -> Backups:
    store = FileStore(tmp_path / "store", "file:///store")
    b = Backups("m1", store, tmp_path, Pruner(store, Retention()), None, BackupAttempts(10.0, 900.0), {})
    monkeypatch.setattr(b, "_snapshot", steps.snapshot)
    monkeypatch.setattr(b, "_store", steps.store)
    return b


async def test_a_change_waits_for_the_snapshot_only_and_the_planner_sees_it_as_the_newest_backup(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = Steps()
    b = backups(tmp_path, steps, monkeypatch)
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        started = trio.current_time()
        assert await b.snapshot_first(None, None, "before a membership change")  # type: ignore[arg-type]
        assert trio.current_time() - started == pytest.approx(2.0)  # the snapshot, not the storing
        await trio.sleep(30)
        health = b.attempts.health(timedelta(hours=5), trio.current_time())
        assert health.age == timedelta(seconds=30)  # the snapshot, not the 5 h old stored backup
        assert steps.stored == []

        # An interval backup meanwhile waits for the one being stored: one at a time.
        async def interval_backup() -> None:
            await b.take(None, None, "backup interval elapsed")  # type: ignore[arg-type]

        nursery.start_soon(interval_backup)
        await trio.sleep(5)
        assert steps.stored == []
        steps.release.set()
        await trio.sleep(5)
        assert steps.stored == ["before a membership change", "backup interval elapsed"]
        assert b.attempts.pending_since is None
        assert b.attempts.health(None, trio.current_time()).age is None  # the store's own age again
        nursery.cancel_scope.cancel()


async def test_a_snapshot_that_cannot_be_stored_counts_as_a_failed_backup(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = Steps()
    steps.fail_with = StoreError("the store refuses writes")
    b = backups(tmp_path, steps, monkeypatch)
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        assert await b.snapshot_first(None, None, "before a version change")  # type: ignore[arg-type]
        steps.release.set()
        await trio.sleep(1)
        assert b.attempts.failures == 1
        assert b.attempts.error == "the store refuses writes"
        assert b.attempts.pending_since is None
        nursery.cancel_scope.cancel()


async def test_without_the_background_task_the_whole_backup_is_waited_for(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = Steps()
    steps.release.set()
    b = backups(tmp_path, steps, monkeypatch)
    assert await b.snapshot_first(None, None, "before a membership change")  # type: ignore[arg-type]
    assert steps.stored == ["before a membership change"]


async def test_a_small_database_is_stored_before_the_change_goes_ahead(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = Steps(size=LATER_FROM - 1)
    steps.fail_with = StoreError("the store refuses writes")
    b = backups(tmp_path, steps, monkeypatch)
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        steps.release.set()
        assert not await b.snapshot_first(None, None, "before a membership change")  # type: ignore[arg-type]
        assert b.attempts.failures == 1  # the planner waits for the retries, as for any backup
        steps.fail_with = None
        assert await b.snapshot_first(None, None, "before a membership change")  # type: ignore[arg-type]
        assert steps.stored == ["before a membership change"]
        assert b.attempts.pending_since is None
        nursery.cancel_scope.cancel()
