"""Bytes of the store's JSON files, as the original Go program writes them.

- Protobuf messages (spec, command, backup meta) go through jsonpb with Indent "  ": two-space
  indent, `"key": value`, no trailing newline, default-valued fields omitted, int64 as strings
  (the models' to_json already quote int64 and omit their own defaults). Newer releases use
  protojson, which may put two spaces after the colon; JSON readers do not care.
- Plain Go structs (cluster-created marker, discovery records) go through encoding/json:
  compact, no spaces, no trailing newline.
"""

from __future__ import annotations

import json
from typing import Any

from etcdmgr.model.errors import InvalidData


def encode_proto_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(_omit_defaults(doc), indent=2, ensure_ascii=False).encode()


def encode_go_json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def decode_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidData(f"{where}: not valid JSON ({e})") from None


def _omit_defaults(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop fields holding a proto3 default (0, "", false, null, empty), as jsonpb does."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            value = _omit_defaults(value)
        if value is None or value is False or value == 0 or value in ("", {}, []):
            continue
        out[key] = value
    return out
