"""Pruning `data-trashcan/`: old etcd data dirs are moved there, never deleted in place, and
would fill the disk over months of rejoins and restores.

Kept: the newest (the last data this node held) while the disk keeps room for a data dir of its
size, and up to KEEP in all while they are younger than MAX_AGE and together hold at most
MAX_BYTES and at most MAX_SHARE of the disk. A small data disk filled otherwise: each data dir
holds one or two 64 MiB WAL files, and etcd could not start beside the old one. Ages come from
the time each entry was moved there; a clock that jumps forward prunes early, but never the
newest entry.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from etcdmgr.model.ids import ClusterToken
from etcdmgr.node.layout import DataLayout
from etcdmgr.util.atomic import fsync_dir

log = logging.getLogger(__name__)

KEEP = 3
MAX_AGE = 7 * 24 * 3600.0  # seconds
MAX_BYTES = 8 << 30  # etcd's largest recommended database, once
MAX_SHARE = 0.25  # of the trash's filesystem


@dataclass(frozen=True)
class TrashEntry:
    name: str
    trashed_at: float  # unix seconds
    size: int  # bytes


def budget(disk_bytes: int) -> int:
    """The bytes the trash may hold on a filesystem of `disk_bytes` (beyond its newest entry)."""
    return min(MAX_BYTES, int(disk_bytes * MAX_SHARE))


def to_prune(
    entries: list[TrashEntry], now: float, max_bytes: int = MAX_BYTES, free: int | None = None
) -> list[TrashEntry]:
    """The entries to delete, oldest first; `free`: the bytes free on the disk (None: plenty). Pure."""
    newest_first = sorted(entries, key=lambda e: (e.trashed_at, e.name), reverse=True)
    kept, total = 0, 0
    prune: list[TrashEntry] = []
    for e in newest_first:
        if kept == 0 or (kept < KEEP and now - e.trashed_at <= MAX_AGE and total + e.size <= max_bytes):
            kept, total = kept + 1, total + e.size
        else:
            prune.append(e)
    oldest_first = prune[::-1]
    if newest_first and free is not None and free + sum(e.size for e in prune) < newest_first[0].size:
        oldest_first.append(newest_first[0])  # the data this node runs now comes first
    return oldest_first


def _size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def prune_trash(layout: DataLayout, now: float | None = None) -> list[str]:
    """Delete what `to_prune` says from the trash; return the names deleted. Blocking (sizes,
    deletes, fsync): run it in a worker thread."""
    trash = layout.trashcan()
    try:
        found = [e for e in os.scandir(trash) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    entries = [TrashEntry(e.name, e.stat(follow_symlinks=False).st_mtime, _size(Path(e.path))) for e in found]
    st = os.statvfs(trash)
    free = st.f_bavail * st.f_frsize
    pruned = to_prune(entries, time.time() if now is None else now, budget(st.f_blocks * st.f_frsize), free)
    for e in pruned:
        shutil.rmtree(trash / e.name, ignore_errors=True)
    if pruned:
        fsync_dir(trash)
        kept = len(entries) - len(pruned)
        log.info(
            "pruned %d old etcd data dirs from %s (%.1f MiB): %s; %d kept%s",
            len(pruned),
            trash,
            sum(e.size for e in pruned) / (1 << 20),
            ", ".join(e.name for e in pruned),
            kept,
            f" ({free / (1 << 20):.1f} MiB were free: too little beside the newest)" if kept == 0 else "",
        )
    return [e.name for e in pruned]


def trash_data_dir(layout: DataLayout, cluster_token: ClusterToken) -> None:
    """Move the data dir of `cluster_token` (if any) to the trash, then prune it. Blocking."""
    if layout.move_to_trash(cluster_token) is not None:
        prune_trash(layout)
