"""Crash-safe file writes (blocking; callers in trio run them in a worker thread).

Every write goes to a hidden temp file in the destination folder, is fsynced, renamed over the
destination, and the folder is fsynced, so a reader sees the old file or the new one, never a
torn one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def make_dirs(path: Path) -> None:
    """mkdir -p, fsyncing the parent of each folder created so the new entries survive a crash."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        fsync_dir(d.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(dest: Path, mode: int) -> Iterator[BinaryIO]:
    """Yield a temp file beside ``dest``; on success it becomes ``dest``, else it is removed."""
    make_dirs(dest.parent)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)


def write_atomic(dest: Path, data: bytes, mode: int = 0o644) -> None:
    with replacing(dest, mode) as f:
        f.write(data)
