"""Delete the backups that the retention rules no longer keep."""

from __future__ import annotations

import logging
from datetime import datetime

from etcdmgr.store.errors import StoreError
from etcdmgr.store.interface import BackupStore
from etcdmgr.store.retention import MAX_SHARE, Retention, backups_to_delete

log = logging.getLogger(__name__)


async def apply_retention(store: BackupStore, now: datetime, retention: Retention) -> list[str]:
    """Delete what `backups_to_delete` says for the store's backups at ``now``; return the
    names deleted, and log them in one line. A backup that cannot be deleted is logged and left
    for the next run, so that one bad folder does not stop the others from being pruned. A store
    that cannot be listed raises StoreError: it never reads as "no backups"."""
    names = await store.list_backups()
    doomed = backups_to_delete(names, now, retention.hourly, retention.daily)
    unbounded = backups_to_delete(names, now, retention.hourly, retention.daily, max_share=1.0)
    if len(unbounded) > len(doomed):
        # Steady operation expires a few backups per pass; this many at once means a clock jump
        # or a changed retention.
        log.warning(
            "retention: %d of %d backups expired at once (clock says %s); deleting at most %d%% per "
            "pass: is the clock right?",
            len(unbounded),
            len(names),
            now.isoformat(timespec="seconds"),
            int(MAX_SHARE * 100),
        )
    deleted: list[str] = []
    for name in doomed:
        try:
            await store.delete_backup(name)
        except StoreError as e:
            log.warning("retention: cannot delete backup %s: %s", name, e)
            continue
        deleted.append(name)
    if deleted:
        log.info(
            "retention: deleted %d of %d backups, oldest %s, newest %s",
            len(deleted),
            len(names),
            min(deleted),
            max(deleted),
        )
    return deleted
