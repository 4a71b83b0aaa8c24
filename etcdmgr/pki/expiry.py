"""When certificates expire, read from their files (blocking: run it in a worker thread)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cryptography import x509


def not_after(path: Path) -> int | None:
    """Unix seconds when the certificates of a PEM file stop working: the latest expiry among
    them, since a CA file holds the old and the new CA while one is rotated. None when the file
    is missing or holds no certificate."""
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        return None
    return max(int(c.not_valid_after_utc.timestamp()) for c in certs) if certs else None


def expiries(files: Mapping[str, Path]) -> dict[str, int]:
    """Name -> expiry (unix seconds) of each readable file of ``files``."""
    return {name: when for name, path in files.items() if (when := not_after(path)) is not None}
