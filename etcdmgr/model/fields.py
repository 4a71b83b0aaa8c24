"""Checked field access for decoding untrusted JSON / msgpack documents."""

from __future__ import annotations

from typing import Any, TypeVar

from etcdmgr.model.errors import InvalidData

T = TypeVar("T")


def as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidData(f"{what}: expected an object, got {type(value).__name__}")
    return value


def get(d: dict[str, Any], key: str, kind: type[T], default: T, what: str) -> T:
    value = d.get(key, default)
    if value is None:
        return default
    if kind is int and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)  # type: ignore[return-value]  # Go marshals int64 as strings
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidData(f"{what}: field {key!r} should be {kind.__name__}, got {type(value).__name__}")
    return value


def str_list(d: dict[str, Any], key: str, what: str) -> tuple[str, ...]:
    value = d.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidData(f"{what}: field {key!r} should be a list of strings")
    return tuple(value)
