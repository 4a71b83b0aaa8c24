"""The peer transport on loopback: each test serves on its own 127.0.0.x address, port 0."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
from certs import peer_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcdmgr.model import PeerEndpoint
from etcdmgr.peer.codec import MAX_FRAME
from etcdmgr.peer.transport import (
    PeerAuthError,
    PeerClient,
    PeerUnreachable,
    Plaintext,
    ProtocolError,
    Request,
    RpcError,
    open_peer_client,
    serve_peers,
)
from etcdmgr.peer.ws import TOO_BIG, WebSocketClosed, client_handshake
from etcdmgr.pki import PeerTlsFiles, client_ssl_context, server_ssl_context

SERVER_ID = "srv-A_1"
CLIENT_ID = "cli-B_2"
FAST = 1.0  # refusals must come long before the 5 s call timeout

_hosts = itertools.count()


def next_host() -> str:
    return f"127.0.0.{next(_hosts) % 240 + 10}"


@pytest.fixture
def host() -> str:
    return next_host()


@dataclasses.dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext
    foreign_client: ssl.SSLContext  # certificate from another CA, but trusts ours
    foreign_server: ssl.SSLContext  # names SERVER_ID, from another CA
    client_files: PeerTlsFiles


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    root: Path = tmp_path_factory.mktemp("pki")
    server = peer_files(root, SERVER_ID)
    client = peer_files(root, CLIENT_ID)
    foreign = peer_files(root, CLIENT_ID, ca_dir="foreign")
    foreign_server = peer_files(root, SERVER_ID, ca_dir="foreign")
    return Tls(
        server=server_ssl_context(server),
        client=client_ssl_context(client),
        foreign_client=client_ssl_context(dataclasses.replace(foreign, ca_bundle=client.ca_bundle)),
        foreign_server=server_ssl_context(dataclasses.replace(foreign_server, ca_bundle=server.ca_bundle)),
        client_files=client,
    )


async def handler(req: Request, caller: str | None) -> Any:
    if req.method == "echo":
        return {
            "args": req.args,
            "caller": caller,
            "from": req.sender,
            "cluster": req.cluster,
            "token": req.token,
        }
    if req.method == "sleep":
        await trio.sleep(req.args["seconds"])
        return "slept"
    if req.method == "refuse":
        raise RpcError("wrong-cluster", f"this is not cluster {req.cluster}")
    if req.method == "unencodable":
        return object()
    if req.method == "big":
        size = req.args["size"]
        if not isinstance(size, int) or not 0 <= size <= 2 * MAX_FRAME:
            raise RpcError("bad-size", f"size {size!r}")
        return b"x" * size
    raise ValueError(f"no method {req.method}")


async def start_server(
    nursery: trio.Nursery, host: str, ctx: ssl.SSLContext | None, **kwargs: Any
) -> PeerEndpoint:
    port = await nursery.start(partial(serve_peers, handler, host, 0, ctx, **kwargs))
    return PeerEndpoint(host, port)


async def echo(client: PeerClient, endpoint: PeerEndpoint, **kwargs: Any) -> Any:
    return await client.call(endpoint, "echo", {"k": "v"}, expect_peer_id=SERVER_ID, **kwargs)


@asynccontextmanager
async def raw_websocket(endpoint: PeerEndpoint, ctx: ssl.SSLContext) -> AsyncIterator[Any]:
    tcp = await trio.open_tcp_stream(endpoint.ip, endpoint.port)
    stream = trio.SSLStream(tcp, ctx)
    try:
        await stream.do_handshake()
        yield await client_handshake(stream, str(endpoint), 2 * MAX_FRAME)
    finally:
        await trio.aclose_forcefully(stream)


async def test_round_trip(nursery: trio.Nursery, host: str, tls: Tls) -> None:
    endpoint = await start_server(nursery, host, tls.server)
    async with open_peer_client(CLIENT_ID, "test-cluster", tls.client) as client:
        result = await echo(client, endpoint, token="tok-1")
        assert result == {
            "args": {"k": "v"},
            "caller": CLIENT_ID,
            "from": CLIENT_ID,
            "cluster": "test-cluster",
            "token": "tok-1",
        }
        big = await client.call(endpoint, "big", {"size": 1_000_000}, expect_peer_id=SERVER_ID)
        assert big == b"x" * 1_000_000


async def test_handler_errors_become_error_answers(
    nursery: trio.Nursery, host: str, tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = await start_server(nursery, host, tls.server)
    async with open_peer_client(CLIENT_ID, "other-cluster", tls.client) as client:
        with pytest.raises(RpcError) as refused:
            await client.call(endpoint, "refuse", {}, expect_peer_id=SERVER_ID)
        assert (refused.value.code, refused.value.message) == (
            "wrong-cluster",
            "this is not cluster other-cluster",
        )
        with pytest.raises(RpcError) as crashed:
            await client.call(endpoint, "nope", {}, expect_peer_id=SERVER_ID)
        assert crashed.value.code == "internal" and "no method nope" in crashed.value.message
        assert "nope from cli-B_2 failed" in caplog.text
        with pytest.raises(RpcError) as unencodable:
            await client.call(endpoint, "unencodable", {}, expect_peer_id=SERVER_ID)
        assert unencodable.value.code == "internal"
        # The connection survived all of that.
        assert (await echo(client, endpoint))["caller"] == CLIENT_ID


async def test_concurrent_calls_share_one_connection(nursery: trio.Nursery, host: str, tls: Tls) -> None:
    endpoint = await start_server(nursery, host, tls.server)
    async with open_peer_client(CLIENT_ID, "c", tls.client) as client:
        results: list[Any] = []

        async def sleeper() -> None:
            results.append(await client.call(endpoint, "sleep", {"seconds": 0.5}, expect_peer_id=SERVER_ID))

        start = trio.current_time()
        async with trio.open_nursery() as calls:
            for _ in range(20):
                calls.start_soon(sleeper)
            await trio.sleep(0.05)
            # A ping must not wait behind the long calls.
            ping_start = trio.current_time()
            await echo(client, endpoint)
            assert trio.current_time() - ping_start < 0.3
        assert results == ["slept"] * 20
        assert trio.current_time() - start < 2.0
        assert len(client._connections) == 1


async def test_timeout_leaves_the_connection_usable(nursery: trio.Nursery, host: str, tls: Tls) -> None:
    endpoint = await start_server(nursery, host, tls.server)
    async with open_peer_client(CLIENT_ID, "c", tls.client) as client:
        with pytest.raises(PeerUnreachable, match=r"no answer within 0\.2s"):
            await client.call(endpoint, "sleep", {"seconds": 0.4}, expect_peer_id=SERVER_ID, timeout=0.2)
        await trio.sleep(0.3)  # the late answer arrives and is dropped
        assert (await echo(client, endpoint))["caller"] == CLIENT_ID


async def test_client_with_foreign_certificate_is_refused_and_logged(
    nursery: trio.Nursery, host: str, tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="etcdmgr.peer.server")
    endpoint = await start_server(nursery, host, tls.server)
    async with open_peer_client(CLIENT_ID, "c", tls.foreign_client) as client:
        start = time.perf_counter()
        with pytest.raises((PeerAuthError, PeerUnreachable), match="certificate"):
            await echo(client, endpoint)
        assert time.perf_counter() - start < FAST
    await trio.sleep(0.05)
    refusals = [r.getMessage() for r in caplog.records if "refused connection" in r.getMessage()]
    assert len(refusals) == 1
    assert "from 127.0.0.1:" in refusals[0] and "CERTIFICATE_VERIFY_FAILED" in refusals[0]


async def test_client_without_certificate_is_refused(nursery: trio.Nursery, host: str, tls: Tls) -> None:
    endpoint = await start_server(nursery, host, tls.server)
    no_cert = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    no_cert.check_hostname = False
    no_cert.load_verify_locations(str(tls.client_files.ca_bundle))
    async with open_peer_client(CLIENT_ID, "c", no_cert) as client:
        start = time.perf_counter()
        with pytest.raises(PeerUnreachable):
            await echo(client, endpoint)
        assert time.perf_counter() - start < FAST


async def test_server_with_another_peer_id_is_refused(nursery: trio.Nursery, host: str, tls: Tls) -> None:
    endpoint = await start_server(nursery, host, tls.server)
    async with open_peer_client(CLIENT_ID, "c", tls.client) as client:
        start = time.perf_counter()
        with pytest.raises(PeerAuthError, match="is srv-A_1, not the expected someone-else"):
            await client.call(endpoint, "echo", {}, expect_peer_id="someone-else")
        assert time.perf_counter() - start < FAST
        assert (await echo(client, endpoint))["caller"] == CLIENT_ID


async def test_server_from_another_ca_is_refused(nursery: trio.Nursery, host: str, tls: Tls) -> None:
    endpoint = await start_server(nursery, host, tls.foreign_server)
    async with open_peer_client(CLIENT_ID, "c", tls.client) as client:
        start = time.perf_counter()
        with pytest.raises(PeerAuthError, match="CERTIFICATE_VERIFY_FAILED"):
            await echo(client, endpoint)
        assert time.perf_counter() - start < FAST


async def test_a_client_cannot_claim_another_id(nursery: trio.Nursery, host: str, tls: Tls) -> None:
    endpoint = await start_server(nursery, host, tls.server)
    async with open_peer_client("impostor", "c", tls.client) as client:
        with pytest.raises(RpcError) as info:
            await echo(client, endpoint)
        assert info.value.code == "forbidden"


async def test_insecure_mode(nursery: trio.Nursery, host: str) -> None:
    endpoint = await start_server(nursery, host, None, plaintext=Plaintext.LOOPBACK)
    async with open_peer_client(CLIENT_ID, "c", None, plaintext=Plaintext.LOOPBACK) as client:
        result = await client.call(endpoint, "echo", {}, expect_peer_id="not checked without TLS")
        assert (result["caller"], result["from"]) == (None, CLIENT_ID)


async def test_nobody_listening(host: str, tls: Tls) -> None:
    async with open_peer_client(CLIENT_ID, "c", tls.client) as client:
        with pytest.raises(PeerUnreachable, match="cannot connect"):
            await echo(client, PeerEndpoint(host, 1))


async def test_reconnects_after_the_server_restarts(host: str, tls: Tls) -> None:
    async with open_peer_client(CLIENT_ID, "c", tls.client) as client, trio.open_nursery() as outer:
        async with trio.open_nursery() as servers:
            endpoint = await start_server(servers, host, tls.server)
            assert (await echo(client, endpoint))["caller"] == CLIENT_ID
            servers.cancel_scope.cancel()
        with pytest.raises(PeerUnreachable):
            await echo(client, endpoint)
        port = await outer.start(serve_peers, handler, host, endpoint.port, tls.server)
        assert port == endpoint.port
        assert (await echo(client, endpoint))["caller"] == CLIENT_ID
        outer.cancel_scope.cancel()


async def test_idle_connections_are_closed_and_reopened(host: str, tls: Tls) -> None:
    async with trio.open_nursery() as nursery:
        endpoint = await start_server(nursery, host, tls.server, idle_timeout=0.2)
        async with open_peer_client(CLIENT_ID, "c", tls.client) as client:
            await echo(client, endpoint)
            # A call longer than the idle timeout keeps the connection open.
            await client.call(endpoint, "sleep", {"seconds": 0.4}, expect_peer_id=SERVER_ID)
            await trio.sleep(0.4)
            assert not client._connections  # the server hung up
            assert (await echo(client, endpoint))["caller"] == CLIENT_ID
        nursery.cancel_scope.cancel()


async def test_oversized_frames(nursery: trio.Nursery, host: str, tls: Tls) -> None:
    endpoint = await start_server(nursery, host, tls.server)
    async with open_peer_client(CLIENT_ID, "c", tls.client) as client:
        with pytest.raises(ProtocolError, match="exceeds"):
            await client.call(endpoint, "echo", {"blob": b"x" * MAX_FRAME}, expect_peer_id=SERVER_ID)
        with pytest.raises(RpcError) as too_big_answer:
            await client.call(endpoint, "big", {"size": MAX_FRAME}, expect_peer_id=SERVER_ID)
        assert too_big_answer.value.code == "internal"
        async with raw_websocket(endpoint, tls.client) as ws:
            await ws.send(b"\x00" * (MAX_FRAME + 1))
            with pytest.raises(WebSocketClosed) as closed:
                with trio.fail_after(2):
                    await ws.receive()
            assert closed.value.code == TOO_BIG
        assert (await echo(client, endpoint))["caller"] == CLIENT_ID


async def test_bad_frames_over_a_real_websocket(nursery: trio.Nursery, host: str, tls: Tls) -> None:
    endpoint = await start_server(nursery, host, tls.server)
    request = {
        "v": 1,
        "id": 9,
        "method": "echo",
        "cluster": "c",
        "token": None,
        "from": CLIENT_ID,
        "args": {},
    }
    async with raw_websocket(endpoint, tls.client) as ws:
        # Readable enough to answer: an error answer, and the connection stays.
        await ws.send(msgpack.packb({**request, "v": 99}))
        answer = msgpack.unpackb(await ws.receive())
        assert answer["id"] == 9 and answer["ok"] is False and answer["error"]["code"] == "bad-request"
        await ws.send(msgpack.packb(request))
        assert msgpack.unpackb(await ws.receive())["result"]["caller"] == CLIENT_ID
        # Not readable: the server closes the connection.
        await ws.send(b"\xc1garbage")
        with pytest.raises(WebSocketClosed) as closed:
            with trio.fail_after(2):
                await ws.receive()
        assert closed.value.code == 1002
    # Not even a websocket: TLS, then junk.
    tcp = await trio.open_tcp_stream(endpoint.ip, endpoint.port)
    stream = trio.SSLStream(tcp, tls.client)
    await stream.do_handshake()
    await stream.send_all(b"GARBAGE / HTTP/0.1\r\n\r\n" * 3)
    received = b""
    with trio.fail_after(2), contextlib.suppress(trio.BrokenResourceError):
        while data := await stream.receive_some():
            received += data
    await trio.aclose_forcefully(stream)
    assert received.startswith(b"HTTP/1.1 400 ")
    async with open_peer_client(CLIENT_ID, "c", tls.client) as client:
        assert (await echo(client, endpoint))["caller"] == CLIENT_ID


async def test_slow_handshake_is_cut_off(
    nursery: trio.Nursery, host: str, tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = await start_server(nursery, host, tls.server, handshake_timeout=0.2)
    tcp = await trio.open_tcp_stream(endpoint.ip, endpoint.port)  # connects, never says hello
    with trio.fail_after(2):
        assert await tcp.receive_some() == b""
    assert "did not finish its handshake within 0.2s" in caplog.text
    await tcp.aclose()


small_values = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.dictionaries(st.text(max_size=5), st.integers(-5, 5), max_size=3)
)
frames = st.one_of(
    st.binary(max_size=300),
    # Envelopes with any mix of fields and values.
    st.dictionaries(
        st.sampled_from(["v", "id", "method", "cluster", "token", "from", "args"]), small_values
    ).map(partial(msgpack.packb, use_bin_type=True)),
    # Valid envelopes reaching the handler with odd methods and arguments.
    st.fixed_dictionaries(
        {
            "v": st.just(1),
            "id": st.integers(0, 2**63 - 1),
            "method": st.sampled_from(["echo", "sleep", "refuse", "unencodable", "big", "nope"]),
            "cluster": st.just("c"),
            "token": st.none() | st.text(max_size=5),
            "from": st.just(CLIENT_ID) | st.text(max_size=5),
            "args": st.dictionaries(st.sampled_from(["seconds", "size", "k"]), small_values, max_size=2),
        }
    ).map(partial(msgpack.packb, use_bin_type=True)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(frames, min_size=1, max_size=8))
async def test_fuzzed_frames_never_crash_or_wedge_the_server(tls: Tls, to_send: list[bytes]) -> None:
    host = next_host()
    async with trio.open_nursery() as nursery:
        endpoint = await start_server(nursery, host, tls.server)
        with trio.fail_after(5):
            async with raw_websocket(endpoint, tls.client) as ws:
                for frame in to_send:
                    try:
                        await ws.send(frame)
                    except WebSocketClosed:
                        break  # the server hung up on an earlier frame: allowed
                with trio.move_on_after(0.05), contextlib.suppress(WebSocketClosed):
                    while True:
                        await ws.receive()
            async with open_peer_client(CLIENT_ID, "c", tls.client) as client:
                assert (await echo(client, endpoint))["caller"] == CLIENT_ID
        nursery.cancel_scope.cancel()
