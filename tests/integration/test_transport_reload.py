"""The peer transport with contexts replaced while it runs (what a daemon does when its CA files
change): new connections use the new contexts, calls under way finish on the old connection."""

from __future__ import annotations

import ssl
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from certs import peer_contexts
from harness import new_block

from etcdmgr.model import PeerEndpoint
from etcdmgr.peer.transport import (
    PeerAuthError,
    PeerUnreachable,
    Request,
    open_peer_client,
    serve_peers,
)

SERVER_ID = "srv-A_1"
CLIENT_ID = "cli-B_2"


async def handler(req: Request, caller: str | None) -> Any:
    if req.method == "sleep":
        await trio.sleep(req.args["seconds"])
        return "slept"
    return {"caller": caller}


class Contexts:
    """A TlsSource whose context the test replaces."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx

    def __call__(self) -> ssl.SSLContext:
        return self.ctx


async def serve(nursery: trio.Nursery, source: Contexts) -> PeerEndpoint:
    host = f"{new_block()}.1"
    port = await nursery.start(partial(serve_peers, handler, host, 0, source))
    return PeerEndpoint(host, port)


async def call(client_ctx: ssl.SSLContext | Contexts, endpoint: PeerEndpoint) -> Any:
    async with open_peer_client(CLIENT_ID, "test", client_ctx) as client:
        return await client.call(endpoint, "echo", {}, expect_peer_id=SERVER_ID, timeout=3)


async def test_a_server_with_new_contexts_takes_new_connections_with_them(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    old_server, _ = peer_contexts(tmp_path, SERVER_ID, ca_dir="old")
    _, old_client = peer_contexts(tmp_path, CLIENT_ID, ca_dir="old")
    new_server, _ = peer_contexts(tmp_path, SERVER_ID, ca_dir="new")
    _, new_client = peer_contexts(tmp_path, CLIENT_ID, ca_dir="new")
    server = Contexts(old_server)
    endpoint = await serve(nursery, server)
    async with open_peer_client(CLIENT_ID, "test", old_client) as open_before:
        assert await open_before.call(endpoint, "echo", {}, expect_peer_id=SERVER_ID) == {"caller": CLIENT_ID}
        server.ctx = new_server  # the old CA dropped: only the new one is trusted now
        with pytest.raises((PeerAuthError, PeerUnreachable)):
            await call(old_client, endpoint)
        assert await call(new_client, endpoint) == {"caller": CLIENT_ID}
        # A connection opened before goes on until it closes.
        assert await open_before.call(endpoint, "echo", {}, expect_peer_id=SERVER_ID) == {"caller": CLIENT_ID}


async def test_a_client_with_new_contexts_handshakes_again_and_lets_calls_under_way_finish(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server_ctx, _ = peer_contexts(tmp_path, SERVER_ID)
    _, client_ctx = peer_contexts(tmp_path, CLIENT_ID)
    _, foreign = peer_contexts(tmp_path, CLIENT_ID, ca_dir="foreign")
    endpoint = await serve(nursery, Contexts(server_ctx))
    source = Contexts(client_ctx)
    async with open_peer_client(CLIENT_ID, "test", source) as client:
        assert await client.call(endpoint, "echo", {}, expect_peer_id=SERVER_ID) == {"caller": CLIENT_ID}
        results: list[Any] = []

        async def slow_call() -> None:
            results.append(await client.call(endpoint, "sleep", {"seconds": 1.0}, expect_peer_id=SERVER_ID))

        async with trio.open_nursery() as calls:
            calls.start_soon(slow_call)
            await trio.sleep(0.2)
            # Contexts the server refuses: the next call must make a new handshake to find out.
            source.ctx = foreign
            with pytest.raises((PeerAuthError, PeerUnreachable)):
                await client.call(endpoint, "echo", {}, expect_peer_id=SERVER_ID, timeout=3)
        assert results == ["slept"]
        source.ctx = client_ctx
        assert await client.call(endpoint, "echo", {}, expect_peer_id=SERVER_ID) == {"caller": CLIENT_ID}
