"""Delete the backups that the retention rules no longer keep (the rules: store/retention.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import trio

from etcdmgr.model.errors import EtcdmgrError
from etcdmgr.model.ids import BackupName
from etcdmgr.store.errors import StoreError
from etcdmgr.store.interface import BackupStore
from etcdmgr.store.retention import MAX_SHARE, Retention, backups_to_delete

log = logging.getLogger(__name__)

# Deletes in flight: each waits mostly on the store (a sync, a request); the store's other
# callers (the leader's loop) keep the rest of its threads.
DELETES_AT_ONCE = 2


async def apply_retention(store: BackupStore, now: datetime, retention: Retention) -> list[BackupName]:
    """Delete what `backups_to_delete` says for the store's backups at ``now``; return the
    names deleted, and log them in one line. A backup that cannot be deleted is logged and left
    for the next run, so that one bad folder does not stop the others from being pruned. A store
    that cannot be listed raises StoreError: it never reads as "no backups"."""
    names = await store.list_backups()
    # Pure, but a while on thousands of names: off the event loop the leader decides on.
    doomed, unbounded = await trio.to_thread.run_sync(
        lambda: (
            backups_to_delete(names, now, retention.hourly, retention.daily),
            backups_to_delete(names, now, retention.hourly, retention.daily, max_share=1.0),
        )
    )
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
    done: set[BackupName] = set()
    limiter = trio.CapacityLimiter(DELETES_AT_ONCE)

    async def delete(name: BackupName) -> None:
        async with limiter:
            try:
                await store.delete_backup(name)
            except StoreError as e:
                log.warning("retention: cannot delete backup %s: %s", name, e)
                return
        done.add(name)

    async with trio.open_nursery() as nursery:
        for name in doomed:
            nursery.start_soon(delete, name)
    deleted = [name for name in doomed if name in done]
    if deleted:
        log.info(
            "retention: deleted %d of %d backups, oldest %s, newest %s",
            len(deleted),
            len(names),
            min(deleted),
            max(deleted),
        )
    return deleted


class Pruner:
    """Applies retention after backups, at most once per `every` seconds: it lists the whole
    store, which a backup every few minutes need not pay for. A daemon runs it as a task of its
    own (`run`, woken by `wake`), so that a store of thousands of backups never holds up the
    leader's decisions; `etcdmgr backup` awaits `after_backup`."""

    def __init__(self, store: BackupStore, retention: Retention, every: float = 3600.0) -> None:
        self.store = store
        self.retention = retention
        self.every = every
        self._last: float | None = None
        self._woken = trio.Event()

    async def after_backup(self) -> list[BackupName]:
        """Prune if the last run is `every` seconds old (or there was none); the names deleted."""
        now = trio.current_time()
        if self._last is not None and now - self._last < self.every:
            return []
        self._last = now
        return await apply_retention(self.store, datetime.now(UTC), self.retention)

    def wake(self) -> None:
        """A backup was taken: `run` prunes if it is due. Returns at once."""
        self._woken.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._woken.wait()
            self._woken = trio.Event()
            try:
                await self.after_backup()
            except EtcdmgrError as e:
                log.warning("pruning old backups failed: %s", e)
