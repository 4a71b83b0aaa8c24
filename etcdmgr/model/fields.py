"""Checked field access for decoding untrusted JSON / msgpack documents.

Every reader goes through these: a field is parsed by one function of its kind (see ids.py and
values.py) and any error names the document and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from etcdmgr.model.errors import InvalidData

T = TypeVar("T")
Parse = Callable[[object, str], T]

_DECIMAL = re.compile(r"-?[0-9]{1,19}")
MAX_TEXT = 4096  # free-form texts (reasons, problems): enough for a sentence, never a flood


def as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidData(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _name(what: str, key: str) -> str:
    return f"{what}: field {key!r}"


def required(d: dict[str, Any], key: str, parse: Parse[T], what: str) -> T:
    value = d.get(key)
    if value is None:
        raise InvalidData(f"{_name(what, key)} is missing")
    return parse(value, _name(what, key))


def optional(d: dict[str, Any], key: str, parse: Parse[T], what: str) -> T | None:
    """None when the field is absent or null (Go and proto3 omit default values)."""
    value = d.get(key)
    return None if value is None else parse(value, _name(what, key))


def listed(d: dict[str, Any], key: str, parse: Parse[T], what: str) -> tuple[T, ...]:
    """A list field; absent or null reads as empty (Go writes a nil slice as null)."""
    value = d.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidData(f"{_name(what, key)}: should be a list, got {type(value).__name__}")
    return tuple(parse(item, f"{_name(what, key)}[{i}]") for i, item in enumerate(value))


def parse_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidData(f"{field}: should be a boolean, got {type(value).__name__}")
    return value


def parse_int(value: object, field: str, *, low: int, high: int) -> int:
    """An integer in [low, high]; Go marshals int64 as a decimal string, which is taken too."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = int(value)
    if number is None:
        raise InvalidData(f"{field}: should be an integer, got {type(value).__name__}")
    if not low <= number <= high:
        raise InvalidData(f"{field}: {number} is out of range [{low}, {high}]")
    return number


def parse_text(value: object, field: str) -> str:
    """A free-form message (a refusal's reason, a state problem), at most MAX_TEXT characters."""
    if not isinstance(value, str):
        raise InvalidData(f"{field}: should be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise InvalidData(f"{field}: longer than {MAX_TEXT} characters")
    return value


def nested(from_json: Callable[[Any], T]) -> Parse[T]:
    """A sub-document's reader as a field parser; its errors name the field they are in."""

    def parse(value: object, field: str) -> T:
        try:
            return from_json(value)
        except InvalidData as e:
            raise InvalidData(f"{field}: {e}") from None

    return parse
