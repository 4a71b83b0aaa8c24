"""Free space before work that needs scratch room (blocking: statvfs may wait on a slow mount)."""

from __future__ import annotations

import os
from pathlib import Path

# Kept free beyond what a job needs: one WAL segment of etcd (64 MiB, preallocated), so a backup
# on etcd's own disk never starves its writes. Smaller filesystems keep a tenth of their size.
RESERVE = 64 << 20
RESERVE_SHARE = 0.1
MIB = 1 << 20


def _existing(path: Path) -> Path:
    """`path`, or its nearest parent that exists (the job may create the folder)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def space_problem(path: Path, need: int, what: str) -> str | None:
    """None when `need` bytes, plus the reserve, are free on the filesystem of `path`; else a
    sentence saying how much is missing."""
    st = os.statvfs(_existing(path))
    free = st.f_bavail * st.f_frsize
    reserve = min(RESERVE, int(st.f_blocks * st.f_frsize * RESERVE_SHARE))
    missing = need + reserve - free
    if missing <= 0:
        return None
    return (
        f"not enough free space for {what} under {path}: it needs {_mib(need)} MiB and {_mib(reserve)} MiB "
        f"stay free for etcd, but only {_mib(free)} MiB are free: {_mib(missing)} MiB missing"
    )


def _mib(n: int) -> str:
    return f"{n / MIB:.1f}"
