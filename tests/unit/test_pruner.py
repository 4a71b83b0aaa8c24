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
from etcdmgr.store.retention import Retention

OLD = timedelta(days=3 * 365)  # past any retention


def add_backup(store: FileStore, age: timedelta, seq: int) -> str:
    name = f"{(datetime.now(UTC) - age).strftime('%Y-%m-%dT%H:%M:%S')}Z-{seq:06d}"
    (store.root / name).mkdir(parents=True)
    (store.root / name / META_FILE).write_text('{"etcdVersion": "3.5.30"}')
    return name


async def test_prunes_at_once_then_at_most_hourly(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    store = FileStore(tmp_path / "store", "file:///store")
    pruner = Pruner(store, Retention(hourly=timedelta(days=7), daily=timedelta(days=365)))

    newest = add_backup(store, timedelta(0), 9)  # always kept
    first = add_backup(store, OLD, 1)
    assert await pruner.after_backup() == [first]  # the first backup after start prunes

    second = add_backup(store, OLD, 2)
    await trio.sleep(59 * 60)
    assert await pruner.after_backup() == []  # within the hour: the store is not even listed
    assert sorted(await store.list_backups()) == [second, newest]

    await trio.sleep(60)
    assert await pruner.after_backup() == [second]
