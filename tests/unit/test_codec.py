from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etcdmgr.model import EtcdmgrError
from etcdmgr.peer.codec import (
    MAX_FRAME,
    Request,
    Response,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from etcdmgr.peer.errors import ProtocolError

REQ = Request(
    7, "GetInfo", "test-cluster", "a-B_c", {"phase": "PREPARE", "n": [1, 2.5, None, b"\x00"]}, "tok"
)


def pack(value: Any) -> bytes:
    out: bytes = msgpack.packb(value, use_bin_type=True)
    return out


def test_request_round_trip_and_wire_form() -> None:
    frame = encode_request(REQ)
    assert decode_request(frame) == REQ
    assert msgpack.unpackb(frame) == {
        "v": 1,
        "rev": 2,
        "id": 7,
        "method": "GetInfo",
        "cluster": "test-cluster",
        "token": "tok",
        "from": "a-B_c",
        "args": {"phase": "PREPARE", "n": [1, 2.5, None, b"\x00"]},
    }
    no_token = Request(1, "Ping", "c", "p")
    assert decode_request(encode_request(no_token)) == no_token
    numbered = Request(2, "StopEtcd", "c", "p", token="tok", seq=12)
    assert decode_request(encode_request(numbered)) == numbered


def test_a_request_of_the_first_release_decodes_as_revision_1() -> None:
    first_release = {
        "v": 1,
        "id": 1,
        "method": "JoinCluster",
        "cluster": "c",
        "token": "t",
        "from": "p",
        "args": {},
    }
    req = decode_request(msgpack.packb(first_release))
    assert (req.revision, req.seq) == (1, None)


def test_response_round_trip_and_wire_form() -> None:
    ok = Response.success(3, {"members": ["a", "b"]})
    assert decode_response(encode_response(ok)) == ok
    err = Response.failure(4, "stale-token", "token abc is not the current one")
    assert decode_response(encode_response(err)) == err
    assert msgpack.unpackb(encode_response(err)) == {
        "v": 1,
        "id": 4,
        "ok": False,
        "error": {"code": "stale-token", "message": "token abc is not the current one"},
    }


def test_protocol_error_is_a_project_error() -> None:
    assert issubclass(ProtocolError, EtcdmgrError)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xc1",  # never used in msgpack
        pack([1, 2]),
        pack({"v": 1}),
        pack({"v": 1, "id": -1, "method": "m", "cluster": "c", "from": "p", "args": {}}),
        pack({"v": 1, "id": True, "method": "m", "cluster": "c", "from": "p", "args": {}}),
        pack({"v": 1, "id": 2**64 - 1, "method": "m", "cluster": "c", "from": "p", "args": {}}),
        pack({1: 2}),  # non-string map key
        b"\xdd\xff\xff\xff\xff",  # array header claiming 4 billion items
        b"\xdf\xff\xff\xff\xff",  # same for a map
        b"\xdb\xff\xff\xff\xff",  # string header claiming 4 GB
        b"\x91" * 5000 + b"\x00",  # nesting deeper than the unpacker's stack
        pack({"v": 1}) + b"\x00",  # trailing bytes
        b"\xd6\xff\x00\x00\x00\x01",  # timestamp ext type
        b"\xa2\xff\xfe",  # invalid UTF-8 string
    ],
)
def test_malformed_frames_raise_protocol_error(frame: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_request(frame)
    assert info.value.request_id is None
    with pytest.raises(ProtocolError):
        decode_response(frame)


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"method": 5},
        {"cluster": None},
        {"from": b"bytes"},
        {"token": 12},
        {"args": [1]},
        {"args": {b"k": 1}},
    ],
)
def test_bad_request_fields_keep_the_id_for_an_answer(change: dict[str, Any]) -> None:
    body = {"v": 1, "id": 42, "method": "m", "cluster": "c", "token": None, "from": "p", "args": {}}
    with pytest.raises(ProtocolError) as info:
        decode_request(pack({**body, **change}))
    assert info.value.request_id == 42


@pytest.mark.parametrize(
    "body",
    [
        {"v": 1, "id": 1, "ok": "yes"},
        {"v": 1, "id": 1, "ok": False},
        {"v": 1, "id": 1, "ok": False, "error": {"code": 1, "message": "m"}},
        {"v": 2, "id": 1, "ok": True, "result": 1},
    ],
)
def test_bad_responses(body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        decode_response(pack(body))


def test_size_limit_is_checked_before_decoding_and_when_encoding() -> None:
    huge = pack({"v": 1, "id": 1, "ok": True, "result": b"x" * MAX_FRAME})
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_response(huge)
    with pytest.raises(ProtocolError, match="exceeds"):
        encode_request(Request(1, "m", "c", "p", {"blob": b"x" * MAX_FRAME}))
    just_fits = Request(1, "m", "c", "p", {"blob": b"x" * (MAX_FRAME - 100)})
    assert decode_request(encode_request(just_fits)) == just_fits


def test_unencodable_values_raise_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="cannot encode"):
        encode_response(Response.success(1, object()))
    with pytest.raises(ProtocolError, match="cannot encode"):
        encode_request(Request(1, "m", "c", "p", {"n": 2**70}))


@settings(max_examples=2000)
@given(st.binary(max_size=512))
def test_fuzzed_bytes_decode_or_raise_protocol_error(frame: bytes) -> None:
    for decode in (decode_request, decode_response):
        try:
            decoded = decode(frame)
        except ProtocolError:
            continue
        assert isinstance(decoded, Request | Response)


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text() | st.binary(), inner, max_size=4),
    max_leaves=10,
)
envelope_fields = st.dictionaries(
    st.sampled_from(["v", "id", "method", "cluster", "token", "from", "args", "ok", "result", "error", "x"]),
    msgpack_values,
)


@settings(max_examples=500)
@given(envelope_fields, st.integers(0, 64), st.binary(max_size=8))
def test_fuzzed_envelopes_decode_or_raise_protocol_error(body: dict[str, Any], cut: int, tail: bytes) -> None:
    frame = pack(body)
    # Whole, truncated, and with trailing garbage.
    for candidate in (frame, frame[:cut], frame + tail):
        for decode in (decode_request, decode_response):
            try:
                decoded = decode(candidate)
            except ProtocolError:
                continue
            assert isinstance(decoded, Request | Response)
