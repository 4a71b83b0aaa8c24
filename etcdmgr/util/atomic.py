"""Crash-safe file writes (blocking; callers in trio run them in a worker thread).

Every write goes to a hidden temp file in the destination folder, is fsynced, renamed over the
destination, and the folder is fsynced, so a reader sees the old file or the new one, never a
torn one.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

# link() fails with these where a filesystem has no hard links (some FUSE and SMB mounts).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})


def make_dirs(path: Path, mode: int | None = None) -> None:
    """mkdir -p, fsyncing the parent of each folder created so the new entries survive a crash.

    With `mode`, each folder created gets exactly that mode whatever the umask (it never has
    more while being created); without, the umask decides. Existing folders are left as they are.
    """
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(0o777 if mode is None else mode)
        except FileExistsError:
            continue
        if mode is not None:
            os.chmod(d, mode)  # mkdir's mode went through the umask
        fsync_dir(d.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(dest: Path, mode: int, dir_mode: int | None = None) -> Iterator[BinaryIO]:
    """Yield a temp file beside ``dest``; on success it becomes ``dest`` with ``mode``, else it is
    removed. Missing folders are created (with ``dir_mode``, see make_dirs)."""
    make_dirs(dest.parent, dir_mode)
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


def publish(done: Path, dest: Path) -> None:
    """Make `done`, a file another program wrote in dest's folder, `dest`: synced, then renamed
    over it, then the folder synced."""
    fd = os.open(done, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(done, dest)
    fsync_dir(dest.parent)


def write_atomic(dest: Path, data: bytes, mode: int = 0o644, dir_mode: int | None = None) -> None:
    with replacing(dest, mode, dir_mode) as f:
        f.write(data)


def remove_file(path: Path) -> bool:
    """Unlink ``path`` (if present) and fsync its folder, so the removal survives a crash; True
    if this call removed it."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


def create_exclusive(dest: Path, data: bytes, mode: int) -> bool:
    """Create ``dest`` holding ``data`` unless it exists; True if this call created it.

    The data goes to a unique temp file (O_EXCL), is fsynced, then hard-linked to ``dest``:
    link() never replaces, so of racing writers exactly one wins, and readers see ``dest``
    complete or not at all. The folder must exist. Without hard links, ``dest`` itself is created
    with O_EXCL (a reader may then see it empty for a moment)."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        try:
            os.link(tmp, dest)
            created = True
        except FileExistsError:
            created = False
        except OSError as e:
            if e.errno not in _NO_HARD_LINKS:
                raise
            created = _create_in_place(dest, data, mode)
    finally:
        Path(tmp).unlink(missing_ok=True)
    if created:
        fsync_dir(dest.parent)
    return created


def _create_in_place(dest: Path, data: bytes, mode: int) -> bool:
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return True
