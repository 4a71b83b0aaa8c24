"""Modes of keys and of the folders holding them, read with stat, for the file-mode tests."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def loose(root: Path, *, up_to: Path | None = None) -> dict[str, str]:
    """Every key under `root` that is not 0600, and every folder from `up_to` (default: root) down
    to a key that is not 0700, as {path: mode}. Empty when all are private; fails on no keys."""
    keys = sorted(root.rglob("*.key"))
    assert keys, f"no keys under {root}"
    top = up_to or root
    found: dict[str, str] = {}
    for key in keys:
        if (mode := stat.S_IMODE(key.stat().st_mode)) != 0o600:
            found[str(key)] = f"{mode:04o}"
        folder = key.parent
        while True:
            if (mode := stat.S_IMODE(folder.stat().st_mode)) != 0o700:
                found[str(folder)] = f"{mode:04o}"
            if folder == top:
                break
            folder = folder.parent
    return found


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)
