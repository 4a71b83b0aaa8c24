"""Copying a file into the store crash-safely, and reading one out, checked against its sha256
(blocking; callers run them in a worker thread). The temp file is hidden (util/atomic), so the
store never lists it."""

from __future__ import annotations

import hashlib
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
