"""Protocol Buffers' wire format: just what the original's small state file needs.

Strict reading: a varint longer than 10 bytes or past 64 bits, a length or fixed-size value
running past the end, field number 0 and groups (wire types 3 and 4, gone from proto3) are
refused with WireError. Fields come out in file order; what they mean is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

VARINT, I64, LEN, I32 = 0, 1, 2, 5
_FIXED = {I64: 8, I32: 4}
_MAX_FIELD = (1 << 29) - 1


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


@dataclass(frozen=True)
class Field:
    number: int
    wire_type: int
    value: int | bytes  # an int for VARINT, the raw bytes otherwise


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at data[pos:] and the position after it."""
    value = 0
    for i in range(10):
        if pos + i >= len(data):
            raise WireError(f"varint cut short at byte {pos + i}")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if value >> 64:
                raise WireError(f"varint at byte {pos} exceeds 64 bits")
            return value, pos + i + 1
    raise WireError(f"varint at byte {pos} is longer than 10 bytes")


def iter_fields(data: bytes) -> Iterator[Field]:
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0 or number > _MAX_FIELD:
            raise WireError(f"field number {number} at byte {start} is out of range")
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
            yield Field(number, wire_type, value)
        elif wire_type == LEN:
            size, pos = read_varint(data, pos)
            if size > len(data) - pos:
                raise WireError(
                    f"field {number} at byte {start} claims {size} bytes; {len(data) - pos} remain"
                )
            yield Field(number, wire_type, data[pos : pos + size])
            pos += size
        elif wire_type in _FIXED:
            size = _FIXED[wire_type]
            if size > len(data) - pos:
                raise WireError(f"field {number} at byte {start} is cut short")
            yield Field(number, wire_type, data[pos : pos + size])
            pos += size
        else:
            raise WireError(
                f"field {number} at byte {start} has wire type {wire_type}, which proto3 does not use"
            )


def encode_varint(value: int) -> bytes:
    if not 0 <= value < 1 << 64:
        raise WireError(f"{value} is not an unsigned 64-bit varint")
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def varint_field(number: int, value: int) -> bytes:
    return encode_varint(number << 3 | VARINT) + encode_varint(value)


def len_field(number: int, value: bytes) -> bytes:
    return encode_varint(number << 3 | LEN) + encode_varint(len(value)) + value
