"""Copying a file into the store crash-safely, checked against its sha256 (blocking; callers
run it in a worker thread). The temp file is hidden (util/atomic), so the store never lists it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from etcdmgr.store.errors import StoreError
from etcdmgr.util.atomic import replacing

_CHUNK = 1 << 20


def copy_atomic(src: Path, dest: Path, expect_sha256: str | None = None, mode: int = 0o600) -> str:
    """Copy ``src`` to ``dest`` and return its sha256 hex; refuse (leaving ``dest`` as it was)
    when ``expect_sha256`` is given and does not match."""
    digest = hashlib.sha256()
    with replacing(dest, mode) as out, src.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        actual = digest.hexdigest()
        if expect_sha256 is not None and actual != expect_sha256.lower():
            raise StoreError(f"checksum mismatch for {src}: sha256 is {actual}, expected {expect_sha256}")
    return actual
