"""The wall clock for decisions that depend on it: backup names, and whether a backup is due.

A test hook lets a fault test jump one daemon's clock without touching the host's: when the
environment variable ETCDMGR_CLOCK_OFFSET_FILE names a file, the seconds it holds (negative for
a clock behind) are added. A missing, empty or unreadable file means no offset. The file is
read at each call, so a jump takes effect at once; it is tiny and only read when the variable is
set, which no deployment does.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta

OFFSET_FILE_ENV = "ETCDMGR_CLOCK_OFFSET_FILE"
# Far beyond any jump a test makes, and well inside what datetime can add.
MAX_OFFSET = timedelta(days=3650).total_seconds()


def now() -> datetime:
    """The current time in UTC, moved by the test offset when one is set."""
    return datetime.now(UTC) + timedelta(seconds=offset_seconds())


def offset_seconds() -> float:
    path = os.environ.get(OFFSET_FILE_ENV)
    if not path:
        return 0.0
    try:
        with open(path, encoding="ascii") as f:
            value = float(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0
    return value if math.isfinite(value) and abs(value) <= MAX_OFFSET else 0.0
