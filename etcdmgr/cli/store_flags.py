"""The store flags every mode that opens a backup store shares."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def store_ca_file(args: Mapping[str, object]) -> Path | None:
    """--store-ca-file, made absolute (the daemon may change folders); None when not given."""
    value = args.get("--store-ca-file")
    return Path(value).absolute() if isinstance(value, str) and value else None
