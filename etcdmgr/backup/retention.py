"""Delete the backups that the retention rules no longer keep."""

from __future__ import annotations

import logging
from datetime import datetime

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
