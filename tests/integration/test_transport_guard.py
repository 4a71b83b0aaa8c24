"""The peer transport before anyone is authenticated: plain websockets only where allowed, both
on one port while moving to TLS, and bounded connection slots per address.

Each test serves on fresh loopback addresses (harness.new_block), port 0; no traffic leaves
loopback (a non-loopback address is only ever refused before connecting).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from certs import peer_files
from harness import new_block

from etcdmgr.model import PeerEndpoint
from etcdmgr.peer.limits import MAX_HANDSHAKES_PER_ADDRESS
from etcdmgr.peer.streams import is_loopback
from etcdmgr.peer.transport import (
    ConnectionLimits,
    PeerClient,
    PeerUnreachable,
    Plaintext,
    Request,
    open_peer_client,
    serve_peers,
)
from etcdmgr.pki import client_ssl_context, server_ssl_context

SERVER_ID = "srv-A_1"
CLIENT_ID = "cli-B_2"
FAST = 1.0


@pytest.fixture
def addresses() -> Iterator[str]:
    """Fresh loopback addresses for this test: servers and bound clients."""
    block = new_block()
    return iter(f"{block}.{n}" for n in range(1, 255))


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root: Path = tmp_path_factory.mktemp("pki")
    return {
        "server": server_ssl_context(peer_files(root, SERVER_ID)),
        "client": client_ssl_context(peer_files(root, CLIENT_ID)),
    }


async def handler(req: Request, caller: str | None) -> Any:
    return {"caller": caller, "from": req.sender}


async def serve(nursery: trio.Nursery, host: str, ctx: Any, port: int = 0, **kwargs: Any) -> PeerEndpoint:
    bound = await nursery.start(partial(serve_peers, handler, host, port, ctx, **kwargs))
    return PeerEndpoint(host, bound)


async def who(client: PeerClient, endpoint: PeerEndpoint) -> Any:
    return (await client.call(endpoint, "who", {}, expect_peer_id=SERVER_ID, timeout=3))["caller"]


def test_loopback_is_127_slash_8_and_ipv6_one() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.201.3.4", "::1", "::ffff:127.0.0.2"]))
    assert not any(map(is_loopback, ["10.1.2.3", "0.0.0.0", "::", "192.168.1.1", "localhost", ""]))
    assert Plaintext.LOOPBACK.allows("127.9.9.9") and not Plaintext.LOOPBACK.allows("10.0.0.1")
    assert Plaintext.ANYWHERE.allows("10.0.0.1") and not Plaintext.NEVER.allows("127.0.0.1")


async def test_a_plain_client_never_calls_a_non_loopback_address(nursery: trio.Nursery) -> None:
    async with open_peer_client(CLIENT_ID, "c", None, plaintext=Plaintext.LOOPBACK) as client:
        start = time.perf_counter()
        with pytest.raises(PeerUnreachable, match="not a loopback address"):
            await who(client, PeerEndpoint("10.254.254.254", 8000))
        assert time.perf_counter() - start < 0.1, "refused before any connection attempt"


async def test_a_daemon_moving_to_tls_serves_both_on_one_port(
    nursery: trio.Nursery, addresses: Iterator[str], contexts: dict[str, Any]
) -> None:
    endpoint = await serve(nursery, next(addresses), contexts["server"], plaintext=Plaintext.LOOPBACK)
    async with open_peer_client(CLIENT_ID, "c", contexts["client"]) as tls_client:
        assert await who(tls_client, endpoint) == CLIENT_ID, "TLS callers are authenticated"
    async with open_peer_client(CLIENT_ID, "c", None, plaintext=Plaintext.LOOPBACK) as plain:
        assert await who(plain, endpoint) is None, "plain callers are taken, unauthenticated"


async def test_a_tls_only_server_refuses_plain_websockets(
    nursery: trio.Nursery, addresses: Iterator[str], contexts: dict[str, Any]
) -> None:
    endpoint = await serve(nursery, next(addresses), contexts["server"])
    async with open_peer_client(CLIENT_ID, "c", None, plaintext=Plaintext.LOOPBACK) as plain:
        start = time.perf_counter()
        with pytest.raises(PeerUnreachable):
            await who(plain, endpoint)
        assert time.perf_counter() - start < FAST


async def test_a_client_moving_to_tls_falls_back_only_for_peers_that_never_spoke_tls(
    addresses: Iterator[str], contexts: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="etcdmgr.peer.client")
    plain_host, tls_host = next(addresses), next(addresses)
    async with (
        open_peer_client(CLIENT_ID, "c", contexts["client"], plaintext=Plaintext.LOOPBACK) as client,
        trio.open_nursery() as outer,
    ):
        plain_only = await serve(outer, plain_host, None, plaintext=Plaintext.LOOPBACK)
        assert await who(client, plain_only) is None, "a peer not on TLS yet: plain websocket"
        assert "calling it over a plain websocket until it speaks TLS" in caplog.text

        async with trio.open_nursery() as servers:
            on_tls = await serve(servers, tls_host, contexts["server"])
            assert await who(client, on_tls) == CLIENT_ID
            servers.cancel_scope.cancel()
        # The same endpoint back without TLS (or someone in its place): no downgrade.
        await serve(outer, tls_host, None, port=on_tls.port, plaintext=Plaintext.LOOPBACK)
        with pytest.raises(PeerUnreachable, match="TLS handshake"):
            await who(client, on_tls)
        outer.cancel_scope.cancel()

    async with open_peer_client(CLIENT_ID, "c", contexts["client"]) as tls_only, trio.open_nursery() as n:
        plain_only = await serve(n, next(addresses), None, plaintext=Plaintext.LOOPBACK)
        with pytest.raises(PeerUnreachable, match="TLS handshake"):
            await who(tls_only, plain_only)
        n.cancel_scope.cancel()


async def test_idle_connections_from_one_address_leave_room_for_peers(
    nursery: trio.Nursery,
    addresses: Iterator[str],
    contexts: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="etcdmgr.peer.server")
    limits = ConnectionLimits()
    endpoint = await serve(nursery, next(addresses), contexts["server"], limits=limits)
    attacker = next(addresses)
    idle = [
        await trio.open_tcp_stream(endpoint.ip, endpoint.port, local_address=attacker) for _ in range(300)
    ]
    try:
        # The server keeps a few in their handshake and closes the rest at once.
        closed = 0
        with trio.move_on_after(3):
            for stream in idle:
                with trio.move_on_after(0.01):
                    if await stream.receive_some() == b"":
                        closed += 1
        assert closed >= 300 - MAX_HANDSHAKES_PER_ADDRESS - 2, closed

        async with open_peer_client(
            CLIENT_ID, "c", contexts["client"], local_address=next(addresses)
        ) as peer:
            start = time.perf_counter()
            assert await who(peer, endpoint) == CLIENT_ID
            assert time.perf_counter() - start < FAST
    finally:
        for stream in idle:
            await trio.aclose_forcefully(stream)
    refusals = [r.getMessage() for r in caplog.records if "refused a connection" in r.getMessage()]
    assert len(refusals) == 1, "one line, not one per connection"
    assert f"handshakes in progress from {attacker}" in refusals[0]
