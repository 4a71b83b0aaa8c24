"""apply_retention on a store holding backups of many ages: deletes exactly what
backups_to_delete names, every file of each, and keeps the rest listed."""

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
    names = [
        name(10 * timedelta(minutes=1)),  # younger than an hour: kept
        name(2 * H + 10 * timedelta(minutes=1)),  # earliest of its hour: kept
        name(2 * H + 5 * timedelta(minutes=1)),  # same hour, later: deleted
        name(3 * D),  # hourly range, earliest of its hour
        name(3 * D - 20 * timedelta(minutes=1)),  # same hour, later: deleted
        name(20 * D),  # daily range: earliest of its day
        name(20 * D - 2 * H),  # same day, later: deleted
        name(800 * D),  # past the daily retention
    ]
    store = fake_store(tmp_path / "store", names)
    retention = Retention(hourly=7 * D, daily=365 * D)
    expected = backups_to_delete(sorted(names), NOW, retention.hourly, retention.daily)
    assert len(expected) == 4

    with caplog.at_level(logging.INFO, logger="etcdmgr.backup.retention"):
        deleted = await apply_retention(store, NOW, retention)
    assert deleted == expected
    assert sorted(await store.list_backups()) == sorted(set(names) - set(expected))
    for n in expected:
        assert not (store.root / n).exists()
    assert (store.root / "not-a-backup").exists()
    assert [r.getMessage() for r in caplog.records] == [f"retention: deleted backup {n}" for n in expected]

    assert await apply_retention(store, NOW, retention) == []  # nothing more to do
