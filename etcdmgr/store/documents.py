"""The store's small documents as bytes and back (pure; shared by every kind of store).

Each reader names the object it read (a path or a URL) in its InvalidData.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from etcdmgr.model.errors import InvalidData
from etcdmgr.model.fields import as_dict, optional
from etcdmgr.model.values import parse_unix_nanos
from etcdmgr.store.codec import decode_json, encode_go_json

T = TypeVar("T")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
UNKNOWN_TIME = "at an unknown time"


def parse_document(data: bytes, where: str) -> Any:
    """The JSON in ``data``; an empty object is no document."""
    if not data.strip():
        raise InvalidData(f"{where} is empty")
    return decode_json(data, where)


def decode(parse: Callable[[Any], T], doc: Any, where: str) -> T:
    """Run ``parse`` on a decoded document, naming the object in any error."""
    try:
        return parse(doc)
    except InvalidData as e:
        raise InvalidData(f"{where}: {e}") from None


def created_bytes(timestamp_nanos: int) -> bytes:
    # encoding/json with `omitempty`, as the original writes it.
    return encode_go_json({"timestamp": timestamp_nanos} if timestamp_nanos else {})


def created_timestamp(doc: Any) -> int:
    what = "cluster-created marker"
    return optional(as_dict(doc, what), "timestamp", parse_unix_nanos, what) or 0


def failure_bytes(reason: str, when: datetime) -> bytes:
    return encode_go_json({"reason": reason, "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})


def parse_failure(doc: Any) -> tuple[str, str]:
    """(reason, when) of a command's failure record; what is missing is said so."""
    d = doc if isinstance(doc, dict) else {}
    reason, when = d.get("reason"), d.get("time")
    return (
        reason if isinstance(reason, str) and reason else "no reason recorded",
        when if isinstance(when, str) and when else UNKNOWN_TIME,
    )


def unreadable_failure(e: Exception) -> tuple[str, str]:
    """A failure record that cannot be read still marks its command failed: it was written
    because the command failed."""
    return f"its failure record cannot be read: {e}", UNKNOWN_TIME


def checksums_bytes(checksums: dict[str, str]) -> bytes:
    return "".join(f"{digest}  {fn}\n" for fn, digest in sorted(checksums.items())).encode()


def parse_checksums(data: bytes, where: str) -> dict[str, str]:
    """`sha256sum` lines ("<hex>  <name>")."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise InvalidData(f"{where}: not text") from None
    sums: dict[str, str] = {}
    for line in text.splitlines():
        digest, sep, filename = line.partition("  ")
        if not sep or not _SHA256_HEX.fullmatch(digest):
            raise InvalidData(f"{where}: malformed line {line!r}")
        sums[filename.lstrip("*")] = digest.lower()
    return sums
