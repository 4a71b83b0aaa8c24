"""Copying a file into the store crash-safely, and reading one out, checked against its sha256
(blocking; callers run them in a worker thread). The temp file is hidden (util/atomic), so the
store never lists it."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from etcdmgr.store.errors import StoreError
from etcdmgr.util.atomic import replacing

_CHUNK = 1 << 20


def copy_atomic(src: Path, dest: Path, expect_sha256: str | None = None, mode: int = 0o600) -> str:
    """Copy ``src`` to ``dest`` and return its sha256 hex; refuse (leaving ``dest`` as it was)
    when ``expect_sha256`` is given and does not match."""
    with replacing(dest, mode) as out:
        return stream_file(src, out.write, expect_sha256)


# link() fails with these across filesystems, or where a filesystem has no hard links.
_CANNOT_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK})


def take_over(src: Path, dest: Path, mode: int = 0o600) -> str:
    """Put ``src``, a finished file its caller will only delete, at ``dest`` and return its
    sha256 hex: hard-linked when both are on one filesystem (a backup of 1 GB is then not
    written twice), else copied (copy_atomic). The link goes to a hidden temp name first, so
    ``dest`` appears complete or not at all."""
    digest = stream_file(src, lambda chunk: None)
    tmp = dest.with_name(f".{dest.name}.{os.urandom(8).hex()}.tmp")  # link() never replaces
    try:
        os.link(src, tmp)
    except OSError as e:
        if e.errno not in _CANNOT_LINK:
            raise
        return copy_atomic(src, dest, digest, mode)
    try:
        os.chmod(tmp, mode)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest


def stream_file(src: Path, sink: Callable[[bytes], object], expect_sha256: str | None = None) -> str:
    """Pass ``src`` to ``sink`` chunk by chunk and return its sha256 hex; StoreError after the
    last chunk when ``expect_sha256`` is given and does not match."""
    digest = hashlib.sha256()
    with src.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            sink(chunk)
    actual = digest.hexdigest()
    check_sha256(actual, expect_sha256, str(src))
    return actual


def check_sha256(actual: str, expect: str | None, what: str) -> None:
    if expect is not None and actual != expect.lower():
        raise StoreError(f"checksum mismatch for {what}: sha256 is {actual}, expected {expect}")
