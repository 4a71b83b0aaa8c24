"""Restore on a node: make this node a quarantined member of a new cluster whose data is a backup.

The backup is fetched and verified, and the room its data needs checked, before anything that
runs is touched; then etcd is stopped, the old data moved to the trash, and the new data dir made
with `snapshot restore`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Awaitable, Callable
from functools import partial

import trio

from etcdmgr.backup import fetch_backup, restore_data_dir
from etcdmgr.backup.errors import NotEnoughSpace
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model import EtcdCluster, EtcdNode, EtcdState
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.trash import trash_data_dir
from etcdmgr.peer.calls import DoRestoreArgs
from etcdmgr.store import BackupStore
from etcdmgr.util.disk import MIB, space_problem

log = logging.getLogger(__name__)


async def restore_member(
    store: BackupStore,
    layout: DataLayout,
    binaries: EtcdBinaries,
    me: EtcdNode,
    call: DoRestoreArgs,
    leave: Callable[[], Awaitable[EtcdState | None]],
) -> EtcdState:
    """Restore `call.backup` into this node's data dir for `call.cluster_token` and return the
    state to start it with. `leave` stops etcd and forgets the node's state; it returns the
    state it had."""
    scratch = layout.scratch() / f"restore-{call.cluster_token}"
    await trio.to_thread.run_sync(partial(shutil.rmtree, scratch, ignore_errors=True))
    try:
        # Fetch and verify before touching anything that runs: the backup, and room for its data.
        fetched = await fetch_backup(store, call.backup, scratch)
        size = fetched.snapshot.stat().st_size
        what = f"restoring backup {call.backup} (a {size / MIB:.1f} MiB database)"
        if problem := await trio.to_thread.run_sync(space_problem, layout.data(), size, what):
            raise NotEnoughSpace(problem)
        old = await leave()
        if old is not None:
            await trio.to_thread.run_sync(trash_data_dir, layout, old.cluster.cluster_token)
        await trio.to_thread.run_sync(trash_data_dir, layout, call.cluster_token)
        await restore_data_dir(
            binaries,
            fetched,
            layout.etcd_data(call.cluster_token),
            me.name,
            {n.name: n.peer_urls for n in call.nodes},
            call.cluster_token,
            me.peer_urls,
        )
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(partial(shutil.rmtree, scratch, ignore_errors=True))
    log.info(
        "restored backup %s as a member of new cluster %s (quarantined)", call.backup, call.cluster_token
    )
    return EtcdState(
        cluster=EtcdCluster(cluster_token=call.cluster_token, nodes=call.nodes),
        etcd_version=call.etcd_version,
        quarantined=True,
    )
