"""Delete the backups that the retention rules no longer keep (the rules: store/retention.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import trio

from etcdmgr.model.ids import BackupName
from etcdmgr.store.errors import StoreError
from etcdmgr.store.interface import BackupStore
from etcdmgr.store.retention import Retention, backups_to_delete

log = logging.getLogger(__name__)


async def apply_retention(store: BackupStore, now: datetime, retention: Retention) -> list[BackupName]:
    """Delete what `backups_to_delete` says for the store's backups at ``now``; return the
    names deleted. A backup that cannot be deleted is logged and left for the next run, so that
    one bad folder does not stop the others from being pruned."""
    names = await store.list_backups()
    deleted: list[BackupName] = []
    for name in backups_to_delete(names, now, retention.hourly, retention.daily):
        try:
            await store.delete_backup(name)
        except StoreError as e:
            log.warning("retention: cannot delete backup %s: %s", name, e)
            continue
        log.info("retention: deleted backup %s", name)
        deleted.append(name)
    return deleted


class Pruner:
    """Applies retention after backups, at most once per `every` seconds: it lists the whole
    store, which a backup every few minutes need not pay for."""

    def __init__(self, store: BackupStore, retention: Retention, every: float = 3600.0) -> None:
        self.store = store
        self.retention = retention
        self.every = every
        self._last: float | None = None

    async def after_backup(self) -> list[BackupName]:
        """Prune if the last run is `every` seconds old (or there was none); the names deleted."""
        now = trio.current_time()
        if self._last is not None and now - self._last < self.every:
            return []
        self._last = now
        return await apply_retention(self.store, datetime.now(UTC), self.retention)
