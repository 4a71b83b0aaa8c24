"""Crash-safe local file operations (blocking; callers run them in a worker thread).

Every write goes to a hidden temp file in the destination folder, is fsynced, renamed over
the destination, and the folder is fsynced, so a reader sees the old file or the new one,
never a torn one. Hidden names (leading ".") are never listed by the store.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from etcdmgr.store.errors import StoreError

_CHUNK = 1 << 20


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
def _replacing(dest: Path, mode: int) -> Iterator[BinaryIO]:
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


def write_atomic(dest: Path, data: bytes, mode: int = 0o600) -> None:
    with _replacing(dest, mode) as f:
        f.write(data)


def copy_atomic(src: Path, dest: Path, expect_sha256: str | None = None, mode: int = 0o600) -> str:
    """Copy ``src`` to ``dest`` and return its sha256 hex; refuse (leaving ``dest`` as it was)
    when ``expect_sha256`` is given and does not match."""
    digest = hashlib.sha256()
    with _replacing(dest, mode) as out, src.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        actual = digest.hexdigest()
        if expect_sha256 is not None and actual != expect_sha256.lower():
            raise StoreError(f"checksum mismatch for {src}: sha256 is {actual}, expected {expect_sha256}")
    return actual
