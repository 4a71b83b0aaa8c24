"""The leader's backups: from which member, how long one may take, with or without the v2
keyspace, pruning after it, and a record of failures for the planner (which decides when a
backup is due, retried, or may be done without)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import trio

from etcdmgr.backup import BackupResult, Pruner, saves_v2
from etcdmgr.backup.take import Snapshot, snapshot_member, store_snapshot
from etcdmgr.controller.backoff import BackupAttempts
from etcdmgr.controller.errors import ActionFailed
from etcdmgr.controller.rules import CHANGE_AFTER_FAILURES, RECENT_BACKUP
from etcdmgr.controller.view import ClusterView
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model import EtcdmgrError, EtcdState
from etcdmgr.model.tls import ClientTLS
from etcdmgr.ops import metrics
from etcdmgr.store import BackupStore

log = logging.getLogger(__name__)

BACKUP_BASE_SECONDS = 20.0
BACKUP_BYTES_PER_SECOND = 5e6  # far below a snapshot's real speed (about 100 MB/s here)
# A change backs up first; from this size on it waits for the snapshot only, not its storing
# (which takes tens of seconds at 1 GB). Below, the whole backup takes seconds.
LATER_FROM = 256 << 20


def cluster_state(view: ClusterView) -> EtcdState:
    """The cluster's state as a peer that runs a member reports it."""
    states = [i.etcd_state for i in view.peers.values() if i.etcd_state is not None]
    if not states:
        raise ActionFailed("no peer reports the cluster's state")
    return states[0]


class Backups:
    """Takes backups for the leader and records how they went in `attempts`, which the planner
    sees: a failure is logged once per reason with the way out, and retried with backoff. One at
    a time (each needs twice the database in scratch). A change that backs up a large database
    first waits for its snapshot only (`snapshot_first`): `run` compresses and stores it."""

    def __init__(
        self,
        me: str,
        store: BackupStore,
        scratch: Path,
        pruner: Pruner,
        etcd_tls: ClientTLS | None,
        attempts: BackupAttempts,
        etcd_env: Mapping[str, str],
    ) -> None:
        self.me = me
        self.store = store
        self.scratch = scratch
        self.pruner = pruner
        self.etcd_tls = etcd_tls
        self.attempts = attempts
        self.etcd_env = etcd_env
        self._one = trio.Semaphore(1)
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Store the snapshots `snapshot_first` takes, in the background."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def take(
        self, view: ClusterView, binaries: EtcdBinaries, why: str, endpoint: str | None = None
    ) -> BackupResult | None:
        """Back up from `endpoint` (default: a healthy member, this node's own first), then wake
        the pruner. None when it failed: recorded and reported, never raised."""
        async with self._one:
            try:
                result = await self._take(view, binaries, endpoint, why)
            except (EtcdmgrError, OSError) as e:  # OSError: the scratch folder (full, unwritable)
                self.failed(str(e) or type(e).__name__)
                return None
        self._stored()
        return result

    async def snapshot_first(self, view: ClusterView, binaries: EtcdBinaries, why: str) -> bool:
        """Back up before a change that need not wait for the compression: snapshot a member now;
        a database of LATER_FROM or more is compressed and stored in the background (`run`), and
        until it is stored the planner counts the snapshot's age as the newest backup's (so the
        next change does not back up again); a smaller one is stored before this returns. False
        when the backup failed (recorded and reported); a failure to store it in the background
        is recorded later, like any failed backup. Without `run`, the whole backup is waited for."""
        if self._nursery is None:
            return await self.take(view, binaries, why) is not None
        await self._one.acquire()
        try:
            snap, limit = await self._snapshot(view, binaries, None)
        except (EtcdmgrError, OSError) as e:
            self._one.release()
            self.failed(str(e) or type(e).__name__)
            return False
        except BaseException:
            self._one.release()
            raise
        if snap.size < LATER_FROM:
            # Stored at once: it takes seconds, and a store that refuses it holds the change back.
            try:
                await self._counted_store(snap, limit, why)
            except (EtcdmgrError, OSError) as e:
                self.failed(str(e) or type(e).__name__)
                return False
            finally:
                self._one.release()
            self._stored()
            return True
        self.attempts.pending_since = trio.current_time()
        log.info("snapshot of %s taken (%s); compressing and storing it in the background", snap.endpoint, why)
        self._nursery.start_soon(self._store_later, snap, limit, why)
        return True

    async def _store_later(self, snap: Snapshot, limit: float, why: str) -> None:
        try:
            await self._counted_store(snap, limit, why)
        except (EtcdmgrError, OSError) as e:
            self.failed(str(e) or type(e).__name__)
            return
        finally:
            self.attempts.pending_since = None
            self._one.release()
        self._stored()

    def _stored(self) -> None:
        if ended := self.attempts.succeeded():
            log.info("backups work again, after %d failed attempt(s)", ended)
        self.pruner.wake()  # pruned in the pruner's own task: it may list thousands of backups

    def failed(self, error: str) -> None:
        """Record a failed backup (the planner then backs off); log it when its reason is new."""
        if self.attempts.failed(error, trio.current_time()):
            log.warning(
                "backup failed: %s. Retried in %.0fs, then ever less often (up to every %.0fs); after %d "
                "failures in a row, membership and version changes go ahead on a backup younger than %gh. "
                "Check that the backup store %s is reachable, writable and has room, and that etcd answers",
                error,
                self.attempts.delay(),
                self.attempts.cap,
                CHANGE_AFTER_FAILURES,
                RECENT_BACKUP.total_seconds() / 3600,
                self.store.url,
            )

    @metrics.counts_backup
    async def _take(
        self, view: ClusterView, binaries: EtcdBinaries, endpoint: str | None, why: str
    ) -> BackupResult:
        snap, limit = await self._snapshot(view, binaries, endpoint)
        return await self._store(snap, limit, why)

    @metrics.counts_backup
    async def _counted_store(self, snap: Snapshot, limit: float, why: str) -> BackupResult:
        return await self._store(snap, limit, why)

    async def _snapshot(
        self, view: ClusterView, binaries: EtcdBinaries, endpoint: str | None
    ) -> tuple[Snapshot, float]:
        """The member's snapshot in scratch, and the time limit of each step of the backup."""
        if endpoint is None:
            healthy = [m for m in view.members or () if m.healthy and m.client_urls and not m.is_learner]
            if not healthy:
                raise ActionFailed("no healthy member to back up")
            # Our own member restarts only when we ask; another node's may restart under the backup.
            endpoint = min(healthy, key=lambda m: m.name != self.me).client_urls[0]
        state = cluster_state(view)
        client = EtcdClient([endpoint], binaries, self.etcd_tls)
        # A member that goes away mid-snapshot can leave etcdctl retrying forever: bound the
        # backup by the database's size rather than by the worst case.
        limit = (
            BACKUP_BASE_SECONDS + (await client.endpoint_status(endpoint)).db_size / BACKUP_BYTES_PER_SECOND
        )
        try:
            with trio.fail_after(limit):
                snap = await snapshot_member(
                    client,
                    endpoint,
                    view.spec,
                    state.etcd_version,
                    self.scratch,
                    with_v2=saves_v2(state.etcd_version, self.etcd_env),
                )
        except trio.TooSlowError:
            raise ActionFailed(f"backup from {endpoint} took longer than {limit:.0f}s; gave up") from None
        return snap, limit

    async def _store(self, snap: Snapshot, limit: float, why: str) -> BackupResult:
        try:
            with trio.fail_after(limit):
                result = await store_snapshot(snap, self.store)
        except trio.TooSlowError:
            raise ActionFailed(
                f"storing the backup of {snap.endpoint} took longer than {limit:.0f}s; gave up"
            ) from None
        log.info(
            "took backup %s (%d bytes in %.2fs, from %s; %s)",
            result.name,
            result.size,
            result.seconds,
            snap.endpoint,
            why,
        )
        return result
