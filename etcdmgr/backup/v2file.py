"""The v2 keyspace of a backup: `etcd.v2.json.gz` beside `etcd.backup.gz`.

A v3 snapshot holds no v2 keys, so backups of etcd versions with a v2 API may carry them in this
extra file (the original program ignores it). Format: gzip (no name, mtime 0) of one UTF-8 JSON
document::

    {"format": "etcdmgr-v2-keys", "version": 1,
     "nodes": [{"key": "/a", "value": "1"},
               {"key": "/dir", "dir": true},
               {"key": "/t", "value": "x", "ttl": 30}]}

Parents come before children; `dir` marks an empty directory (or one with a TTL; other
directories come back with their keys); `ttl` is the seconds left when the backup was taken.
Keys whose name starts with "_" are hidden by the v2 API and so are not saved.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from etcdmgr.backup.errors import BackupError
from etcdmgr.etcd.http import V2Node

V2_FILE = "etcd.v2.json.gz"
FORMAT = "etcdmgr-v2-keys"
VERSION = 1


def write_v2_file(nodes: Sequence[V2Node], dest: Path) -> None:
    """Blocking; callers run it in a worker thread."""
    doc = {"format": FORMAT, "version": VERSION, "nodes": [_node_json(n) for n in nodes]}
    with dest.open("wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as z:
        z.write(json.dumps(doc, separators=(",", ":")).encode())


def read_v2_file(path: Path) -> list[V2Node]:
    """Blocking; raises BackupError when the file is not a v2 key file of a known version."""
    try:
        with gzip.open(path, "rb") as f:
            doc = json.loads(f.read())
    except (OSError, EOFError, zlib.error, ValueError) as e:
        raise BackupError(f"{path.name}: not a gzipped JSON v2 key file ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BackupError(f"{path.name}: not a v2 key file (format is not {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise BackupError(f"{path.name}: v2 key file version {doc.get('version')!r} is not supported")
    try:
        return [_node(n) for n in doc["nodes"]]
    except (KeyError, TypeError, ValueError) as e:
        raise BackupError(f"{path.name}: malformed v2 node ({e!r})") from None


def _node_json(node: V2Node) -> dict[str, Any]:
    out: dict[str, Any] = {"key": node.key}
    if node.value is None:
        out["dir"] = True
    else:
        out["value"] = node.value
    if node.ttl is not None:
        out["ttl"] = node.ttl
    return out


def _node(d: dict[str, Any]) -> V2Node:
    key = d["key"]
    value = None if d.get("dir") else d["value"]
    ttl = d.get("ttl")
    if not isinstance(key, str) or not (value is None or isinstance(value, str)):
        raise ValueError(f"key and value must be strings: {d!r}")
    return V2Node(key, value, None if ttl is None else int(ttl))
