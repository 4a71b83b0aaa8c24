"""Take one backup of a running member into the backup store."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import trio

from etcdmgr.backup.v2file import V2_FILE, write_v2_file
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.snapshot import gzip_file
from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.ids import BackupName
from etcdmgr.model.values import EtcdVersion
from etcdmgr.store.interface import BackupStore
from etcdmgr.store.layout import DATA_FILE
from etcdmgr.util import clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupResult:
    name: BackupName
    info: BackupInfo  # as stored, with the files' checksums
    size: int  # bytes of the data files stored
    seconds: float
    v2_keys: int | None  # None: the v2 keyspace was not saved


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
    """Snapshot the member at ``endpoint`` into a new backup of ``store``.

    The backup holds `etcd.backup.gz` (gzip of the v3 snapshot db, as the original writes it)
    and, when ``with_v2``, the v2 keyspace in `etcd.v2.json.gz` (see etcdmgr.backup.v2file; the
    member must serve the v2 API). The meta records ``etcd_version`` and ``cluster_spec``.
    Nothing is listed in the store until the backup is complete; scratch files (a temp folder
    under ``scratch``, about twice the db size) are always removed.
    """
    started = time.monotonic()
    now = now or clock.now()
    work = Path(await trio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix=".backup-", dir=scratch)))
    try:
        snapshot = work / "snapshot.db"
        files = {DATA_FILE: work / DATA_FILE}
        await client.snapshot_save(snapshot, endpoint)
        await gzip_file(snapshot, files[DATA_FILE])
        snapshot.unlink()
        v2_keys: int | None = None
        if with_v2:
            # From the same member as the snapshot, so that one reachable member is enough.
            one = EtcdClient([endpoint], client.binaries, client.tls, timeout=client.timeout)
            nodes = await one.dump_v2()
            files[V2_FILE] = work / V2_FILE
            await trio.to_thread.run_sync(write_v2_file, nodes, files[V2_FILE])
            v2_keys = len(nodes)

        size = sum(p.stat().st_size for p in files.values())
        name = await store.new_backup_name(now)
        info = BackupInfo(etcd_version, int(now.timestamp()), cluster_spec)
        stored = await store.write_backup(name, files, info)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started
    v2_text = "" if v2_keys is None else f", {v2_keys} v2 keys"
    log.info("backup %s of %s: %d bytes%s in %.2f s", name, endpoint, size, v2_text, seconds)
    return BackupResult(name, stored, size, seconds, v2_keys)
