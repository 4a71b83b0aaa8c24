"""Restore a backup into a brand-new cluster, on the node that founds it.

    fetched = await fetch_backup(store, name, workdir)      # download, verify, gunzip
    await restore_data_dir(binaries, fetched, data_dir, ...)  # before etcd starts
    ... start etcd on data_dir, wait until healthy ...
    await restore_v2(client, fetched)                         # v2 keys, if the backup has them

Unlike the original (a logical copy of every key through a temporary etcd), the data dir is
made with `snapshot restore`, so keys keep their revisions and leases. Every pair of the
versions 3.3, 3.4 and 3.5 restores this way, downgrades (3.5 -> 3.3) included, so no logical
copy is needed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from etcdmgr.backup.errors import BackupError, NotEnoughSpace
from etcdmgr.backup.v2file import V2_FILE, read_v2_file
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.http import V2Node
from etcdmgr.etcd.snapshot import gunzip_file, snapshot_restore
from etcdmgr.etcd.versions import EtcdBinaries, has_v2_api
from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import BackupName
from etcdmgr.store.errors import StoreError
from etcdmgr.store.interface import BackupStore
from etcdmgr.store.layout import DATA_FILE
from etcdmgr.util.disk import space_problem

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "snapshot.db"


@dataclass(frozen=True)
class FetchedBackup:
    """A backup downloaded and checked, ready to restore."""

    name: BackupName
    info: BackupInfo
    snapshot: Path  # the v3 snapshot db
    v2: tuple[V2Node, ...] | None  # None: the backup holds no v2 keyspace


async def fetch_backup(store: BackupStore, name: BackupName, dest_dir: Path) -> FetchedBackup:
    """Download backup ``name`` into ``dest_dir`` and unpack it; raise BackupError when it is
    missing, incomplete or corrupt.

    Checksums are verified when the backup has them (ours do); a backup the original wrote has
    none, and then gzip's own CRC is what catches a damaged file. NotEnoughSpace when the
    unpacked snapshot would not fit in ``dest_dir`` (checked once the packed one is there).
    """
    try:
        info = await store.read_backup_info(name)
    except (StoreError, InvalidData) as e:
        raise BackupError(f"backup {name} cannot be used: {e}") from None
    await trio.to_thread.run_sync(lambda: dest_dir.mkdir(parents=True, exist_ok=True))
    packed = dest_dir / DATA_FILE
    snapshot = dest_dir / SNAPSHOT_FILE
    try:
        await store.fetch_backup_file(name, DATA_FILE, packed)
        unpacked = await trio.to_thread.run_sync(_unpacked_size, packed)
        if problem := await trio.to_thread.run_sync(
            space_problem, dest_dir, unpacked, f"unpacking backup {name}"
        ):
            raise NotEnoughSpace(problem)
        await gunzip_file(packed, snapshot)
        # The original never writes the v2 file, and ours always list it in their checksums.
        v2 = None
        if V2_FILE in info.checksums:
            v2_path = await store.fetch_backup_file(name, V2_FILE, dest_dir / V2_FILE)
            v2 = tuple(await trio.to_thread.run_sync(read_v2_file, v2_path))
    except NotEnoughSpace:
        raise
    except (StoreError, EtcdError, BackupError) as e:
        raise BackupError(f"backup {name} cannot be used: {e}") from None
    finally:
        packed.unlink(missing_ok=True)
    if not info.checksums:
        log.info("backup %s has no checksums (written by etcd-manager); gzip's CRC checked it", name)
    return FetchedBackup(name, info, snapshot, v2)


def _unpacked_size(packed: Path) -> int:
    """The size gzip's trailer gives (ISIZE): exact below 4 GiB, modulo 4 GiB above (etcd's
    default quota is 2 GiB)."""
    with packed.open("rb") as f:
        if f.seek(0, os.SEEK_END) < 4:
            return 0
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


async def restore_data_dir(
    binaries: EtcdBinaries,
    fetched: FetchedBackup,
    data_dir: Path,
    name: str,
    initial_cluster: Mapping[str, Sequence[str]],
    cluster_token: str,
    peer_urls: Sequence[str],
    *,
    niceness: int = 0,
) -> None:
    """Make ``data_dir`` (which must not exist) the data dir of member ``name`` of a new cluster
    holding the backup's v3 keyspace; start etcd there with the same initial cluster and token.
    A positive ``niceness`` lowers the restore's CPU priority (drills, which must not starve etcd).
    """
    try:
        await snapshot_restore(
            binaries,
            fetched.snapshot,
            data_dir,
            name,
            initial_cluster,
            cluster_token,
            peer_urls,
            niceness=niceness,
        )
    except EtcdError as e:
        raise BackupError(
            f"cannot restore backup {fetched.name} (etcd {fetched.info.etcd_version or 'unknown'}) "
            f"with etcd {binaries.version}: {e}"
        ) from e
    log.info("restored backup %s into %s with etcd %s", fetched.name, data_dir, binaries.version)


async def restore_v2(client: EtcdClient, fetched: FetchedBackup) -> int:
    """Write the backup's v2 keys into the new cluster (its members must run with the v2 API
    enabled); return how many were written. Call it once, on one member, after it is healthy."""
    if not fetched.v2:
        return 0
    if not has_v2_api(client.binaries.version):
        log.warning(
            "backup %s holds %d v2 keys, but etcd %s has no v2 API: they are not restored",
            fetched.name,
            len(fetched.v2),
            client.binaries.version,
        )
        return 0
    count = await client.load_v2(fetched.v2)
    log.info("restored %d v2 keys of backup %s", count, fetched.name)
    return count
