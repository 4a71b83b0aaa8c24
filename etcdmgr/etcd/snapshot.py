"""v3 snapshots on disk: restore into a new data dir (revisions kept), status, and gzip."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from etcdmgr.etcd._tool import budget, deadline, run_tool
from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.launch import format_initial_cluster
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.util.atomic import fsync_dir, replacing
from etcdmgr.util.gz import CorruptGzip, Gunzip, compress_stream

# Default limits; a caller's own cancel scope around a call shortens them.
RESTORE_TIMEOUT = 300.0
STATUS_TIMEOUT = 60.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SnapshotStatus:
    hash: int
    revision: int
    total_keys: int
    total_size: int


def _snapshot_tool(binaries: EtcdBinaries) -> list[str]:
    # etcdutl took over offline snapshot commands in 3.5 (etcdctl's are deprecated, gone in 3.6).
    return [str(binaries.etcdutl)] if binaries.etcdutl else [str(binaries.etcdctl)]


async def snapshot_restore(
    binaries: EtcdBinaries,
    snapshot: Path,
    data_dir: Path,
    name: str,
    initial_cluster: Mapping[str, Sequence[str]],
    cluster_token: str,
    peer_urls: Sequence[str],
    *,
    niceness: int = 0,
) -> None:
    """Make `data_dir` (which must not exist) a member data dir holding the snapshot's keyspace.

    A real restore: keys keep their revisions, leases stay, and the member starts as a new
    cluster (`initial_cluster` and `cluster_token` must match what it is started with). The dir
    appears only when complete. A positive `niceness` runs the tool under `nice`.
    """
    partial = _prepare_restore(data_dir)
    cmd = [
        *_niced(niceness),
        *_snapshot_tool(binaries),
        "snapshot",
        "restore",
        str(snapshot),
        f"--data-dir={partial}",
        f"--name={name}",
        f"--initial-cluster={format_initial_cluster(initial_cluster)}",
        f"--initial-cluster-token={cluster_token}",
        f"--initial-advertise-peer-urls={','.join(peer_urls)}",
    ]
    what = f"snapshot restore {snapshot.name}"
    with deadline(budget(RESTORE_TIMEOUT), what):
        await run_tool(cmd, what)
    await trio.to_thread.run_sync(_publish_dir, partial, data_dir)


def _publish_dir(partial: Path, data_dir: Path) -> None:
    """Rename the finished data dir into place; the folder is synced so a crash keeps it there."""
    partial.replace(data_dir)
    fsync_dir(data_dir.parent)


def _niced(niceness: int) -> list[str]:
    nice = shutil.which("nice") if niceness > 0 else None
    return [nice, "-n", str(niceness)] if nice else []


def _prepare_restore(data_dir: Path) -> Path:
    """Check the target is free; return the empty sibling to restore into first."""
    if data_dir.exists():
        raise EtcdError(f"snapshot restore: {data_dir} exists; move it away first")
    partial = data_dir.with_name(data_dir.name + ".restoring")
    if partial.exists():
        shutil.rmtree(partial)  # our own leftover from an interrupted restore
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return partial


async def snapshot_status(binaries: EtcdBinaries, snapshot: Path) -> SnapshotStatus:
    """Hash, revision and key count of a snapshot file; fails on a corrupt file."""
    what = f"snapshot status {snapshot.name}"
    with deadline(budget(STATUS_TIMEOUT), what):
        out = await run_tool(
            [*_snapshot_tool(binaries), "snapshot", "status", str(snapshot), "-w", "json"], what
        )
    try:
        d = json.loads(out)
        return SnapshotStatus(int(d["hash"]), int(d["revision"]), int(d["totalKey"]), int(d["totalSize"]))
    except (ValueError, KeyError, TypeError) as e:
        raise EtcdError(f"snapshot status {snapshot.name}: unexpected output {out[:200]!r}") from e


def _gzip(src: Path, dest: Path) -> None:
    with src.open("rb") as inp, replacing(dest, 0o600) as out:
        compress_stream(inp, out, size=os.fstat(inp.fileno()).st_size)


def _gunzip(src: Path, dest: Path) -> None:
    with src.open("rb") as inp, replacing(dest, 0o600) as out:
        unpack = Gunzip(out.write)
        while chunk := inp.read(_CHUNK):
            unpack.write(chunk)
        unpack.finish()


async def gzip_file(src: Path, dest: Path) -> None:
    """Compress `src` into `dest` (streaming, in parallel members after one declaring the total
    size: see util/gz.py; `dest` appears only when complete)."""
    await trio.to_thread.run_sync(_gzip, src, dest)


async def gunzip_file(src: Path, dest: Path) -> None:
    """Decompress `src` into `dest` (streaming; raises on a truncated or corrupt file)."""
    try:
        await trio.to_thread.run_sync(_gunzip, src, dest)
    except (OSError, CorruptGzip) as e:
        raise EtcdError(f"cannot gunzip {src.name}: {e}") from e
