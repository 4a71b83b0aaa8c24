"""Take one backup of a running member into the backup store."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import trio

from etcdmgr.backup.errors import NotEnoughSpace
from etcdmgr.backup.figures import measure
from etcdmgr.backup.v2file import V2_FILE, write_v2_file
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.snapshot import gzip_file, snapshot_status
from etcdmgr.etcd.versions import has_v2_api
from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.ids import BackupName
from etcdmgr.model.values import EtcdVersion
from etcdmgr.store.interface import BackupStore
from etcdmgr.store.layout import DATA_FILE, VERIFY_FILE
from etcdmgr.util import clock
from etcdmgr.util.disk import MIB, space_problem

log = logging.getLogger(__name__)

# A fault to inject, for proving that a restore drill catches a backup that was bad before its
# checksums were computed: set, every snapshot is cut to half its size before it is stored.
FAULT_TRUNCATE_SNAPSHOT = "ETCDMGR_FAULT_TRUNCATE_SNAPSHOT"
SNAPSHOT_DB = "snapshot.db"


# What etcd reads as false for a boolean flag set through its environment (Go's strconv.ParseBool).
_GO_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})


def saves_v2(etcd_version: str, etcd_env: Mapping[str, str]) -> bool:
    """Whether a backup of a member running ``etcd_version`` holds the v2 keyspace: where that
    version has the v2 API and the daemon's ETCD_ENABLE_V2 (which it passes on to etcd) does
    not turn it off. Without the API there is no v2 keyspace to save or restore."""
    return has_v2_api(etcd_version) and etcd_env.get("ETCD_ENABLE_V2", "true").strip() not in _GO_FALSE


@dataclass(frozen=True)
class BackupResult:
    name: BackupName
    info: BackupInfo  # as stored, with the files' checksums
    size: int  # bytes of the data files stored
    seconds: float
    v2_keys: int | None  # None: the v2 keyspace was not saved


@dataclass
class Snapshot:
    """A backup's files in a scratch folder of its own, snapshotted but not yet compressed or
    stored (``store_snapshot`` does both, and removes the folder)."""

    work: Path
    files: dict[str, Path]  # store file name -> scratch path; DATA_FILE is the raw snapshot db
    size: int  # of the snapshot db
    info: BackupInfo
    endpoint: str
    now: datetime
    started: float  # time.monotonic()
    v2_keys: int | None

    def discard(self) -> None:
        """Remove the scratch folder (blocking)."""
        shutil.rmtree(self.work, ignore_errors=True)


async def take_backup(
    client: EtcdClient,
    endpoint: str,
    store: BackupStore,
    cluster_spec: ClusterSpec | None,
    etcd_version: EtcdVersion,
    scratch: Path,
    *,
    now: datetime | None = None,
    with_v2: bool,
) -> BackupResult:
    """Snapshot the member at ``endpoint`` into a new backup of ``store``: ``snapshot_member``
    then ``store_snapshot``."""
    snap = await snapshot_member(client, endpoint, cluster_spec, etcd_version, scratch, now=now, with_v2=with_v2)
    return await store_snapshot(snap, store)


async def snapshot_member(
    client: EtcdClient,
    endpoint: str,
    cluster_spec: ClusterSpec | None,
    etcd_version: EtcdVersion,
    scratch: Path,
    *,
    now: datetime | None = None,
    with_v2: bool,
) -> Snapshot:
    """What a backup of the member at ``endpoint`` holds, in a temp folder under ``scratch``
    (about twice the db size once compressed; NotEnoughSpace, before anything is written, when
    its filesystem lacks that room): the v3 snapshot db, `etcdmgr-verify.json` (the member's
    figures at the snapshot's revision, which a restore drill compares) and, when ``with_v2``,
    the v2 keyspace in `etcd.v2.json.gz` (see etcdmgr.backup.v2file; the member must serve the
    v2 API), both taken right after the snapshot. The meta records ``etcd_version`` and
    ``cluster_spec``. The folder is removed if this fails."""
    started = time.monotonic()
    now = now or clock.now()
    # The snapshot and its gzip lie in the scratch folder together: up to twice the db.
    db_size = (await client.endpoint_status(endpoint)).db_size
    what = f"a backup of {endpoint} (a {db_size / MIB:.1f} MiB database)"
    if problem := await trio.to_thread.run_sync(space_problem, scratch, 2 * db_size, what):
        raise NotEnoughSpace(problem)
    work = Path(await trio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix=".backup-", dir=scratch)))
    try:
        snapshot = work / SNAPSHOT_DB
        files = {DATA_FILE: snapshot}
        await client.snapshot_save(snapshot, endpoint)
        if await _record_figures(client, endpoint, snapshot, work / VERIFY_FILE):
            files[VERIFY_FILE] = work / VERIFY_FILE
        if os.environ.get(FAULT_TRUNCATE_SNAPSHOT):
            await trio.to_thread.run_sync(os.truncate, snapshot, snapshot.stat().st_size // 2)
        v2_keys: int | None = None
        if with_v2:
            # From the same member as the snapshot, so that one reachable member is enough.
            one = EtcdClient([endpoint], client.binaries, client.tls, timeout=client.timeout)
            nodes = await one.dump_v2()
            files[V2_FILE] = work / V2_FILE
            await trio.to_thread.run_sync(write_v2_file, nodes, files[V2_FILE])
            v2_keys = len(nodes)
    except BaseException:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(shutil.rmtree, work, True)
        raise
    info = BackupInfo(etcd_version, int(now.timestamp()), cluster_spec)
    size = (await trio.to_thread.run_sync(snapshot.stat)).st_size
    return Snapshot(work, files, size, info, endpoint, now, started, v2_keys)


async def store_snapshot(snap: Snapshot, store: BackupStore) -> BackupResult:
    """Compress the snapshot and store it all as a new backup; the scratch folder is always
    removed. Nothing is listed in the store until the backup is complete."""
    try:
        files = dict(snap.files)
        files[DATA_FILE] = snap.work / DATA_FILE
        await gzip_file(snap.files[DATA_FILE], files[DATA_FILE])
        await trio.to_thread.run_sync(snap.files[DATA_FILE].unlink)
        size = sum(files[k].stat().st_size for k in (DATA_FILE, V2_FILE) if k in files)
        name = await store.new_backup_name(snap.now)
        stored = await store.write_backup(name, files, snap.info)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(snap.discard)
    seconds = time.monotonic() - snap.started
    v2_text = "" if snap.v2_keys is None else f", {snap.v2_keys} v2 keys"
    log.info("backup %s of %s: %d bytes%s in %.2f s", name, snap.endpoint, size, v2_text, seconds)
    return BackupResult(name, stored, size, seconds, snap.v2_keys)


async def _record_figures(client: EtcdClient, endpoint: str, snapshot: Path, dest: Path) -> bool:
    """Write the live member's figures at the snapshot's revision to ``dest``, right after the
    snapshot (before the member may compact past it). A backup without them is still a backup:
    False (logged) when they cannot be had."""
    try:
        # A keyspace never written to is at revision 1, though its snapshot holds no revision.
        revision = max(1, (await snapshot_status(client.binaries, snapshot)).revision)
        figures = await measure(client, endpoint, revision)
    except EtcdError as e:
        log.warning("backup of %s: cannot record its figures for restore drills: %s", endpoint, e)
        return False
    await trio.to_thread.run_sync(dest.write_bytes, figures.to_bytes())
    return True
