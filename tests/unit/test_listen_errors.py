"""A port already taken is one plain error naming the address, never a traceback: the daemon logs
it as one line and exits 1 (found by the soak: a daemon restarted while its old address was still
bound exited twelve times with a full traceback)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from etcdmgr.model.errors import EtcdmgrError
from etcdmgr.ops.http import serve_http
from etcdmgr.peer.errors import PeerError
from etcdmgr.peer.server import serve_peers
from etcdmgr.peer.transport import Plaintext


@pytest.fixture
def taken() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


async def no_handler(*args: object) -> None:
    raise AssertionError("never called")


async def test_the_peer_api_on_a_taken_port(taken: int) -> None:
    with pytest.raises(PeerError, match=rf"^cannot serve the peer API on 127\.0\.0\.1:{taken}: Address already in use$"):
        await serve_peers(no_handler, "127.0.0.1", taken, None, plaintext=Plaintext.LOOPBACK)


async def test_the_metrics_port_taken(taken: int) -> None:
    with pytest.raises(EtcdmgrError, match=rf"^cannot serve metrics on 127\.0\.0\.1:{taken}: Address already in use$"):
        await serve_http({}, "127.0.0.1", taken)
