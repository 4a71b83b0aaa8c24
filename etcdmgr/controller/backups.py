"""The leader's backup policy: from which member, how long it may take, when one is fresh
enough to skip, and pruning after it."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import trio

from etcdmgr.backup import BackupResult, Pruner, take_backup
from etcdmgr.controller.errors import ActionFailed
from etcdmgr.controller.observe import backup_age
from etcdmgr.controller.view import ClusterView
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.versions import EtcdBinaries, has_v2_api
from etcdmgr.model import EtcdState
from etcdmgr.model.tls import ClientTLS
from etcdmgr.ops import metrics
from etcdmgr.store import BackupStore

log = logging.getLogger(__name__)

FRESH_BACKUP = timedelta(minutes=1)  # a backup this young covers the next membership change too
BACKUP_BASE_SECONDS = 20.0
BACKUP_BYTES_PER_SECOND = 5e6  # far below a snapshot's real speed (about 100 MB/s here)


def cluster_state(view: ClusterView) -> EtcdState:
    """The cluster's state as a peer that runs a member reports it."""
    states = [i.etcd_state for i in view.peers.values() if i.etcd_state is not None]
    if not states:
        raise ActionFailed("no peer reports the cluster's state")
    return states[0]


class Backups:
    def __init__(
        self, me: str, store: BackupStore, scratch: Path, pruner: Pruner, etcd_tls: ClientTLS | None
    ) -> None:
        self.me = me
        self.store = store
        self.scratch = scratch
        self.pruner = pruner
        self.etcd_tls = etcd_tls

    @metrics.counts_backup
    async def take(
        self, view: ClusterView, binaries: EtcdBinaries, why: str, endpoint: str | None = None
    ) -> BackupResult:
        """Back up from `endpoint` (default: a healthy member, this node's own first), then prune."""
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
                result = await take_backup(
                    client,
                    endpoint,
                    self.store,
                    view.spec,
                    state.etcd_version,
                    self.scratch,
                    with_v2=has_v2_api(state.etcd_version),
                )
        except trio.TooSlowError:
            raise ActionFailed(f"backup from {endpoint} took longer than {limit:.0f}s; gave up") from None
        log.info(
            "took backup %s (%d bytes in %.2fs, from %s; %s)",
            result.name,
            result.size,
            result.seconds,
            endpoint,
            why,
        )
        await self.pruner.after_backup()
        return result

    async def before_change(self, view: ClusterView, binaries: EtcdBinaries) -> None:
        """Back up before a membership or version change, unless a fresh backup exists."""
        age = await backup_age(self.store)
        if age is None or age > FRESH_BACKUP:
            await self.take(view, binaries, "before a membership change")
