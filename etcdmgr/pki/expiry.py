"""When certificates run out, for the metrics (blocking: reads files; run it in a worker thread)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from etcdmgr.pki.errors import PkiError
from etcdmgr.pki.keys import load_certs


def expiry(path: Path) -> float | None:
    """End of validity (unix time) of the longest-lived certificate in `path`, or None when
    the file is missing or unreadable. A CA file may hold an older CA kept for a rotation, which
    is meant to run out: the newest one is what counts."""
    try:
        certs = load_certs(path)
    except PkiError:
        return None
    return max((c.not_valid_after_utc.timestamp() for c in certs), default=None)


def expiries(files: Mapping[str, Path]) -> dict[str, float]:
    """{name: end of validity} of the certificate files that exist."""
    return {name: end for name, path in files.items() if (end := expiry(path)) is not None}
