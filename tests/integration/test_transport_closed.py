"""The peer client tells its owner when the other side closes a connection (the process there
died), and stays quiet when it closes one itself (idle, or a timed-out call)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
from certs import peer_files
from harness import new_block

from etcdmgr.model import PeerEndpoint
from etcdmgr.peer.transport import PeerUnreachable, Plaintext, open_peer_client
from etcdmgr.pki import client_ssl_context, server_ssl_context

from .test_transport import CLIENT_ID, SERVER_ID, start_server


@pytest.fixture
def host() -> str:
    return f"{new_block()}.1"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    root: Path = tmp_path_factory.mktemp("pki")
    return server_ssl_context(peer_files(root, SERVER_ID)), client_ssl_context(peer_files(root, CLIENT_ID))


async def test_a_server_that_goes_away_is_reported_at_once(
    host: str, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    closed: list[PeerEndpoint] = []
    told = trio.Event()

    def on_closed(endpoint: PeerEndpoint) -> None:
        closed.append(endpoint)
        told.set()

    async with open_peer_client(CLIENT_ID, "c", tls[1], on_closed=on_closed) as client:
        async with trio.open_nursery() as server:
            endpoint = await start_server(server, host, tls[0])
            await client.call(endpoint, "echo", {}, expect_peer_id=SERVER_ID)
            server.cancel_scope.cancel()  # its connections close, as a killed process's would
        with trio.fail_after(1):
            await told.wait()
        assert closed == [endpoint]


async def test_connections_the_client_closes_itself_are_not_news(host: str) -> None:
    closed: list[PeerEndpoint] = []
    async with trio.open_nursery() as server:
        endpoint = await start_server(server, host, None, plaintext=Plaintext.LOOPBACK)
        async with open_peer_client(
            CLIENT_ID, "c", None, plaintext=Plaintext.LOOPBACK, idle_timeout=0.2, on_closed=closed.append
        ) as client:
            await client.call(endpoint, "echo", {}, expect_peer_id=None)
            await trio.sleep(0.6)  # idled out
            # A numbered call that times out closes its connection too.
            with pytest.raises(PeerUnreachable):
                await client.call(endpoint, "sleep", {"seconds": 5}, expect_peer_id=None, seq=1, timeout=0.2)
            await trio.sleep(0.3)
        server.cancel_scope.cancel()
    assert closed == []
