"""apply_retention on a store holding backups of many ages: deletes exactly what
backups_to_delete names, every file of each, keeps the rest listed, and says so in one line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from etcdmgr.backup import apply_retention
from etcdmgr.store import FileStore
from etcdmgr.store.layout import META_FILE
from etcdmgr.store.retention import Retention, backups_to_delete

NOW = datetime(2024, 6, 15, 12, 30, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def name(ago: timedelta, seq: int = 1) -> str:
    return f"{(NOW - ago).strftime('%Y-%m-%dT%H:%M:%S')}Z-{seq:06d}"


def fake_store(root: Path, names: list[str]) -> FileStore:
    """Backup folders as the store lays them out (contents do not matter to retention)."""
    for n in names:
        (root / n).mkdir(parents=True)
        (root / n / "etcd.backup.gz").write_bytes(b"x")
        (root / n / META_FILE).write_text('{"etcdVersion": "3.5.30"}')
    (root / "not-a-backup").mkdir()
    (root / "not-a-backup" / META_FILE).write_text("{}")
    return FileStore(root, "file:///store")


async def test_apply_retention(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    recent = [name(timedelta(minutes=m)) for m in range(1, 11)]  # the 10 newest: always kept
    names = [
        *recent,
        name(10 * timedelta(minutes=1) + timedelta(seconds=30)),  # younger than an hour: kept
        name(2 * H + 10 * timedelta(minutes=1)),  # past the hourly retention: earliest of its day
        name(2 * H + 5 * timedelta(minutes=1)),  # same day, later: deleted
        name(3 * D),  # earliest of its day: kept
        name(3 * D - 20 * timedelta(minutes=1)),  # same day, later: deleted
        name(20 * D),  # earliest of its day: kept
        name(20 * D - 2 * H),  # same day, later: deleted
        # Past the daily retention, but its day is among the 30 most recent days that hold a
        # backup: kept (the retention counts days with backups too, not only the clock).
        name(800 * D),
    ]
    store = fake_store(tmp_path / "store", names)
    retention = Retention(hourly=2 * H, daily=30 * D)
    expected = backups_to_delete(sorted(names), NOW, retention.hourly, retention.daily)
    assert expected == sorted(
        [
            name(20 * D - 2 * H),
            name(3 * D - 20 * timedelta(minutes=1)),
            name(2 * H + 5 * timedelta(minutes=1)),
        ]
    )

    with caplog.at_level(logging.INFO, logger="etcdmgr.backup.retention"):
        deleted = await apply_retention(store, NOW, retention)
    assert deleted == expected
    assert sorted(await store.list_backups()) == sorted(set(names) - set(expected))
    for n in expected:
        assert not (store.root / n).exists()
    assert (store.root / "not-a-backup").exists()
    oldest, newest = min(expected), max(expected)
    assert [r.getMessage() for r in caplog.records] == [
        f"retention: deleted 3 of {len(names)} backups, oldest {oldest}, newest {newest}"
    ]

    assert await apply_retention(store, NOW, retention) == []  # nothing more to do
