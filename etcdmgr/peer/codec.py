"""Peer RPC frames: one msgpack map per websocket message, in a versioned envelope.

Request:  {"v": 1, "rev": 2, "id": int, "method": str, "cluster": str, "token": str | None,
           "seq": int (mutating calls), "from": str, "args": map}
Response: {"v": 1, "id": int, "ok": true, "result": any}
          {"v": 1, "id": int, "ok": false, "error": {"code": str, "message": str}}

"v" is the framing, checked strictly. "rev" is the protocol revision the sender speaks: the
first release sent none (revision 1), and its decoder ignores keys it does not know, so newer
fields ride beside the old ones and both releases talk during a rolling upgrade. Revision 2
numbers mutating calls ("seq", see peer/election.py).

Frames come from the network, so decoding never raises anything but ProtocolError and never
allocates much more than the frame's own size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from etcdmgr.peer.errors import ProtocolError

VERSION = 1
REVISION = 2
MAX_FRAME = 4 * 1024 * 1024
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Request:
    id: int
    method: str
    cluster: str
    sender: str
    args: dict[str, Any] = field(default_factory=dict)
    token: str | None = None
    seq: int | None = None  # the leader's number for a mutating call
    revision: int = REVISION


@dataclass(frozen=True)
class Response:
    id: int
    ok: bool
    result: Any = None
    code: str = ""
    message: str = ""

    @classmethod
    def success(cls, id: int, result: Any) -> Response:
        return cls(id, True, result)

    @classmethod
    def failure(cls, id: int, code: str, message: str) -> Response:
        return cls(id, False, code=code, message=message)


def encode_request(req: Request) -> bytes:
    body = {
        "v": VERSION,
        "rev": req.revision,
        "id": req.id,
        "method": req.method,
        "cluster": req.cluster,
        "token": req.token,
        "from": req.sender,
        "args": req.args,
    }
    if req.seq is not None:
        body["seq"] = req.seq
    return _pack(body)


def encode_response(resp: Response) -> bytes:
    body: dict[str, Any] = {"v": VERSION, "id": resp.id, "ok": resp.ok}
    if resp.ok:
        body["result"] = resp.result
    else:
        body["error"] = {"code": resp.code, "message": resp.message}
    return _pack(body)


def decode_request(frame: bytes) -> Request:
    d = _unpack(frame)
    req_id = _id(d)
    try:
        _check_version(d)
        args = d.get("args", {})
        if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
            raise ProtocolError("args should be a map with string keys")
        return Request(
            id=req_id,
            method=_str(d, "method"),
            cluster=_str(d, "cluster"),
            sender=_str(d, "from"),
            args=args,
            token=_optional_str(d, "token"),
            seq=_optional_count(d, "seq"),
            revision=_optional_count(d, "rev") or 1,
        )
    except ProtocolError as e:
        raise ProtocolError(f"request {req_id}: {e}", request_id=req_id) from None


def decode_response(frame: bytes) -> Response:
    d = _unpack(frame)
    resp_id = _id(d)
    _check_version(d)
    ok = d.get("ok")
    if ok is True:
        return Response.success(resp_id, d.get("result"))
    if ok is not False:
        raise ProtocolError(f"response {resp_id}: 'ok' should be a boolean")
    error = d.get("error")
    if not isinstance(error, dict):
        raise ProtocolError(f"response {resp_id}: 'error' should be a map")
    return Response.failure(resp_id, _str(error, "code"), _str(error, "message"))


def _pack(body: dict[str, Any]) -> bytes:
    try:
        frame: bytes = msgpack.packb(body, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise ProtocolError(f"cannot encode message: {e}") from e
    if len(frame) > MAX_FRAME:
        raise ProtocolError(f"message of {len(frame)} bytes exceeds the {MAX_FRAME} byte limit")
    return frame


def _unpack(frame: bytes) -> dict[str, Any]:
    if not isinstance(frame, bytes):
        raise ProtocolError(f"frame should be bytes, got {type(frame).__name__}")
    if len(frame) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(frame)} bytes exceeds the {MAX_FRAME} byte limit")
    # Every element takes at least one byte, so the frame length bounds every count; without
    # these limits a 5-byte array header could make the unpacker allocate gigabytes.
    n = len(frame)
    try:
        value = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            max_str_len=n,
            max_bin_len=n,
            max_array_len=n,
            max_map_len=n,
            max_ext_len=0,
        )
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as e:
        raise ProtocolError(f"undecodable frame: {e!r}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"frame should be a map, got {type(value).__name__}")
    return value


def _check_version(d: dict[str, Any]) -> None:
    if d.get("v") != VERSION:
        raise ProtocolError(f"unsupported protocol version {d.get('v')!r} (this side speaks {VERSION})")


def _id(d: dict[str, Any]) -> int:
    value = d.get("id")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
        raise ProtocolError("'id' should be a non-negative 64-bit integer")
    return value


def _str(d: dict[Any, Any], key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"{key!r} should be a string")
    return value


def _optional_count(d: dict[str, Any], key: str) -> int | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
        raise ProtocolError(f"{key!r} should be a non-negative 64-bit integer")
    return value


def _optional_str(d: dict[str, Any], key: str) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"{key!r} should be a string or nil")
    return value
