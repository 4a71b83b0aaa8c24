"""Restore a backup into a brand-new cluster, on the node that founds it.

    fetched = await fetch_backup(store, name, workdir)      # download, verify, gunzip: one pass
    await restore_data_dir(binaries, fetched, data_dir, ...)  # before etcd starts
    ... start etcd on data_dir, wait until healthy ...
    await restore_v2(client, fetched)                         # v2 keys, if the backup has them

Unlike the original (a logical copy of every key through a temporary etcd), the data dir is
made with `snapshot restore`, so keys keep their revisions and leases. Every pair of the
versions 3.3, 3.4 and 3.5 restores this way, downgrades (3.5 -> 3.3) included, so no logical
copy is needed.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import trio

from etcdmgr.backup.errors import BackupError, NotEnoughSpace
from etcdmgr.backup.v2file import V2_FILE, read_v2_file
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.http import V2Node
from etcdmgr.etcd.snapshot import snapshot_restore
from etcdmgr.etcd.versions import EtcdBinaries, has_v2_api
from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import BackupName
from etcdmgr.store.errors import StoreError
from etcdmgr.store.interface import BackupStore
from etcdmgr.store.layout import DATA_FILE
from etcdmgr.util.disk import space_problem
from etcdmgr.util.gz import CorruptGzip, Gunzip, declared_size

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
    """Download backup ``name`` into ``dest_dir``, unpacking it as it streams; raise BackupError
    when it is missing, incomplete or corrupt.

    Checksums are verified when the backup has them (ours do); a backup the original wrote has
    none, and then gzip's own CRC is what catches a damaged file. The backup is read once: its
    checksum and gzip's CRCs are checked as the snapshot is written, so the snapshot is sound
    only when this returns. NotEnoughSpace, before anything is written, when the disk under
    ``dest_dir`` lacks room for it (its size: declared by ours, the packed size at least for the
    original's, whose disk filling up is then reported as such).
    """
    info = await _info(store, name)
    await trio.to_thread.run_sync(lambda: dest_dir.mkdir(parents=True, exist_ok=True))
    snapshot = dest_dir / SNAPSHOT_FILE
    what = f"unpacking backup {name}"
    packed = (await _files(store, name)).get(DATA_FILE, 0)
    if problem := await trio.to_thread.run_sync(space_problem, dest_dir, packed, what):
        raise NotEnoughSpace(problem)  # the packed size is the least the snapshot needs

    def room(size: int) -> None:
        if problem := space_problem(dest_dir, size, what):
            raise NotEnoughSpace(problem)

    # Scratch: removed by the caller, so neither synced nor renamed into place.
    out = await trio.to_thread.run_sync(snapshot.open, "wb")
    try:
        await _unpack(store, name, info, _writer(out, snapshot, name), room)
    except BaseException:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(out.close)
            await trio.to_thread.run_sync(lambda: snapshot.unlink(missing_ok=True))
        raise
    await trio.to_thread.run_sync(out.close)
    v2 = await _read_v2(store, name, info, dest_dir)
    if not info.checksums:
        log.info("backup %s has no checksums (written by etcd-manager); gzip's CRC checked it", name)
    return FetchedBackup(name, info, snapshot, v2)


async def check_backup(store: BackupStore, name: BackupName, scratch: Path) -> FetchedBackup:
    """What fetch_backup checks, without writing the snapshot: for the leader, before a restore
    that its nodes then fetch. A backup with checksums is read once for its sha256 (the nodes
    unpack it, checking gzip's CRCs before they touch anything); one without is unpacked to
    nowhere, since its CRCs are all there is. The result's ``snapshot`` does not exist."""
    info = await _info(store, name)
    await trio.to_thread.run_sync(lambda: scratch.mkdir(parents=True, exist_ok=True))
    await _unpack(store, name, info, None)
    return FetchedBackup(name, info, scratch / SNAPSHOT_FILE, await _read_v2(store, name, info, scratch))


async def _info(store: BackupStore, name: BackupName) -> BackupInfo:
    try:
        return await store.read_backup_info(name)
    except (StoreError, InvalidData) as e:
        raise BackupError(f"backup {name} cannot be used: {e}") from None


async def _files(store: BackupStore, name: BackupName) -> dict[str, int]:
    try:
        return await store.backup_files(name)
    except StoreError as e:
        raise BackupError(f"backup {name} cannot be used: {e}") from None


async def _unpack(
    store: BackupStore,
    name: BackupName,
    info: BackupInfo,
    out: Callable[[bytes], object] | None,
    room: Callable[[int], None] | None = None,
) -> None:
    """Read the snapshot's gzip from the store, unpacking it into ``out`` (None: to nowhere,
    and only when there is no checksum to check instead). ``room(size)`` is called before
    anything is unpacked when the file declares its unpacked size (ours do: util/gz.py)."""
    unpack = Gunzip(out) if out is not None or not info.checksums else None
    first = True

    def sink(chunk: bytes) -> None:
        nonlocal first
        if first and room is not None and (size := declared_size(chunk)) is not None:
            room(size)
        first = False
        if unpack is not None:
            unpack.write(chunk)

    try:
        await store.read_backup_file(name, DATA_FILE, sink)
        if unpack is not None:
            unpack.finish()
    except CorruptGzip as e:
        raise BackupError(f"backup {name} cannot be used: cannot gunzip {DATA_FILE}: {e}") from None
    except StoreError as e:
        raise BackupError(f"backup {name} cannot be used: {e}") from None


def _writer(out: BinaryIO, path: Path, name: BackupName) -> Callable[[bytes], object]:
    """out.write, with a full disk reported as such."""

    def write(data: bytes) -> None:
        try:
            out.write(data)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise NotEnoughSpace(
                    f"not enough free space under {path.parent} to unpack backup {name}"
                ) from None
            raise BackupError(f"cannot unpack backup {name} into {path}: {e.strerror or e}") from None

    return write


async def _read_v2(
    store: BackupStore, name: BackupName, info: BackupInfo, dest_dir: Path
) -> tuple[V2Node, ...] | None:
    # The original never writes the v2 file, and ours always list it in their checksums.
    if V2_FILE not in info.checksums:
        return None
    try:
        v2_path = await store.fetch_backup_file(name, V2_FILE, dest_dir / V2_FILE)
        return tuple(await trio.to_thread.run_sync(read_v2_file, v2_path))
    except (StoreError, BackupError) as e:
        raise BackupError(f"backup {name} cannot be used: {e}") from None


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
