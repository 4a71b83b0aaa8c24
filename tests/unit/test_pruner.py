"""Retention runs after a backup at most once an hour (the daemon's leader and `etcdmgr backup`
share this rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio
import trio.testing

from etcdmgr.backup import Pruner
from etcdmgr.store import FileStore
from etcdmgr.store.layout import META_FILE
from etcdmgr.store.retention import Retention, backups_to_delete

OLD = timedelta(days=3 * 365)  # past any retention


def add_backup(store: FileStore, age: timedelta, seq: int) -> str:
    name = f"{(datetime.now(UTC) - age).strftime('%Y-%m-%dT%H:%M:%S')}Z-{seq:06d}"
    (store.root / name).mkdir(parents=True)
    (store.root / name / META_FILE).write_text('{"etcdVersion": "3.5.30"}')
    return name


async def test_prunes_at_once_then_at_most_hourly(tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    # The mock clock only moves when told: the store's calls run in threads, in real time.
    store = FileStore(tmp_path / "store", "file:///store")
    retention = Retention(hourly=timedelta(hours=1), daily=timedelta(days=1))
    pruner = Pruner(store, retention)

    for n in range(10):  # the newest ten are always kept
        add_backup(store, timedelta(minutes=n), 10 + n)
    for day in range(3):  # days of backups past the daily retention: enough to expire
        add_backup(store, OLD - timedelta(days=day), 20 + day)
    expected = backups_to_delete(
        await store.list_backups(), datetime.now(UTC), retention.hourly, retention.daily
    )
    assert expected, "the retention rules expire some of them"
    assert await pruner.after_backup() == expected  # the first backup after start prunes

    again = add_backup(store, OLD - timedelta(days=9), 30)
    mock_clock.jump(59 * 60)
    assert await pruner.after_backup() == []  # within the hour: the store is not even listed
    assert again in await store.list_backups()

    mock_clock.jump(60)
    expected = backups_to_delete(
        await store.list_backups(), datetime.now(UTC), retention.hourly, retention.daily
    )
    assert expected, "the new old backup made more expire"
    assert await pruner.after_backup() == expected
