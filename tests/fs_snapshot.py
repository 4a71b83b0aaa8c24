"""What a folder holds, to prove that something changed nothing on disk."""

from __future__ import annotations

import os
from pathlib import Path


def tree_snapshot(root: Path, *, skip_logs: bool = False) -> dict[str, bytes | None]:
    """Every folder (None) and file (its bytes) under root; logs left out when asked (a running
    daemon's keep growing)."""
    out: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            if not (skip_logs and name.endswith(".log")):
                path = os.path.join(folder, name)
                out[os.path.relpath(path, root)] = Path(path).read_bytes()
    return out
