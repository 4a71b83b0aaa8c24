"""The peer API client: one multiplexed websocket per endpoint, reopened after failures.

While a cluster moves to TLS (a Plaintext policy beside an SSL context), an endpoint whose TLS
handshake fails for a reason other than a certificate is called over a plain websocket, if the
policy allows it for that address and the endpoint never spoke TLS to this client.
"""

from __future__ import annotations

import copy
import itertools
import logging
import ssl
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import trio

from etcdmgr.model import PeerEndpoint
from etcdmgr.peer.codec import MAX_FRAME, Request, Response, decode_response, encode_request
from etcdmgr.peer.errors import PeerAuthError, PeerError, PeerUnreachable, ProtocolError, RpcError
from etcdmgr.peer.streams import (
    IdleTimer,
    Plaintext,
    TlsSource,
    certificate_peer_id,
    classify,
    client_tls_handshake,
    current_context,
    open_tcp,
)
from etcdmgr.peer.ws import PROTOCOL_ERROR, WebSocket, WebSocketClosed, client_handshake

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 30.0  # shorter than the server's, so a call never races the server hanging up


@asynccontextmanager
async def open_peer_client(
    my_id: str,
    cluster_name: str,
    ssl_context: TlsSource | None,
    *,
    plaintext: Plaintext = Plaintext.NEVER,
    local_address: str | None = None,
    idle_timeout: float = IDLE_TIMEOUT,
    on_closed: Callable[[PeerEndpoint], None] | None = None,
) -> AsyncIterator[PeerClient]:
    """A PeerClient whose connections live until the block ends.

    plaintext: to whom plain websockets may go (all calls without ssl_context, else the TLS
    fallback). local_address: the source address of its connections (the daemon's own, so a
    peer's server can tell daemons on one host apart). on_closed: told of each endpoint whose
    connection the other side closed or broke (not one this client closed itself): the process
    there may have died, which is news long before a ping times out.
    """
    if ssl_context is None and plaintext is Plaintext.NEVER:
        raise ValueError("a peer client without TLS must be allowed plain websockets to someone")
    error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield PeerClient(
                    my_id,
                    cluster_name,
                    ssl_context,
                    nursery,
                    idle_timeout,
                    plaintext,
                    local_address,
                    on_closed,
                )
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Connection tasks never raise, so the group only wraps the caller's own exception
        # (the block runs inside the nursery): hand that back unwrapped.
        if len(group.exceptions) != 1:
            raise
        error = group.exceptions[0]
    if error is not None:
        try:
            raise error
        finally:
            error = None  # no reference cycle through this frame


class PeerClient:
    def __init__(
        self,
        my_id: str,
        cluster_name: str,
        ssl_context: TlsSource | None,
        nursery: trio.Nursery,
        idle_timeout: float,
        plaintext: Plaintext,
        local_address: str | None,
        on_closed: Callable[[PeerEndpoint], None] | None = None,
    ) -> None:
        self.my_id = my_id
        self.cluster_name = cluster_name
        self._ssl = ssl_context
        self._nursery = nursery
        self._idle_timeout = idle_timeout
        self._plaintext = plaintext
        self._local_address = local_address
        self._on_closed = on_closed
        self._connections: dict[PeerEndpoint, _Connection] = {}
        self._connecting: defaultdict[PeerEndpoint, trio.Lock] = defaultdict(trio.Lock)
        self._spoke_tls: set[PeerEndpoint] = set()  # never fall back to plaintext for these
        self._plain: set[PeerEndpoint] = set()  # called over plain websockets (logged once)

    async def call(
        self,
        endpoint: PeerEndpoint,
        method: str,
        args: dict[str, Any],
        *,
        expect_peer_id: str | None,
        token: str | None = None,
        seq: int | None = None,
        timeout: float = 5.0,  # one deadline for connect, handshake and answer
    ) -> Any:
        """Call method on the peer at endpoint and return its result.

        With TLS, the server's certificate must name expect_peer_id (unless None); on a plain
        websocket nothing can be checked. Raises PeerUnreachable, PeerAuthError or RpcError. A
        numbered (mutating) call that times out closes its connection: nothing more is sent on it.
        """
        conn: _Connection | None = None
        try:
            with trio.fail_after(timeout):
                conn = await self._connection(endpoint)
                if conn.tls and expect_peer_id is not None and conn.peer_id != expect_peer_id:
                    found = conn.peer_id or "no etcd-manager peer"
                    raise PeerAuthError(f"{endpoint} is {found}, not the expected {expect_peer_id}")
                return await conn.call(Request(0, method, self.cluster_name, self.my_id, args, token, seq))
        except trio.TooSlowError:
            if conn is not None and seq is not None:
                conn.close()
            raise PeerUnreachable(f"{method} to {endpoint}: no answer within {timeout:g}s") from None

    async def _connection(self, endpoint: PeerEndpoint) -> _Connection:
        conn = self._connections.get(endpoint)
        if conn is not None and self._usable(conn):
            return conn
        # Concurrent first calls to an endpoint share one connection attempt.
        async with self._connecting[endpoint]:
            conn = self._connections.get(endpoint)
            if conn is None or not self._usable(conn):
                conn = await self._nursery.start(self._run_connection, endpoint)
            return conn

    def _usable(self, conn: _Connection) -> bool:
        """Alive, and made with the SSL context of the moment: after the contexts were replaced
        (new CA files) new calls go over a new handshake, which verifies both sides again; calls
        under way on the old connection finish there, and it closes once idle."""
        return conn.alive and (self._ssl is None or conn.context is current_context(self._ssl))

    async def _run_connection(
        self, endpoint: PeerEndpoint, *, task_status: trio.TaskStatus[_Connection] = trio.TASK_STATUS_IGNORED
    ) -> None:
        # Errors before task_status.started() reach the caller; after it, this task must not raise.
        context = None if self._ssl is None else current_context(self._ssl)
        stream = await self._open(endpoint, context)
        tls = isinstance(stream, trio.SSLStream)
        conn: _Connection | None = None
        try:
            try:
                ws = await client_handshake(stream, str(endpoint), MAX_FRAME)
            except WebSocketClosed as e:
                what = f"websocket upgrade with {endpoint} failed"
                if tls:
                    # TLS 1.3 servers check the client certificate after the client's handshake
                    # is done, and the TLS layer here closes without an alert when refusing.
                    what += " (if the server closed at once, it may have refused our certificate)"
                raise classify(e, what) from e
            conn = _Connection(
                endpoint, ws, tls, certificate_peer_id(stream, "server"), self._idle_timeout, context
            )
            self._connections[endpoint] = conn
            task_status.started(conn)
            await conn.run()
        finally:
            if conn is not None and self._connections.get(endpoint) is conn:
                del self._connections[endpoint]
            await trio.aclose_forcefully(stream)
        # Told only now, so that whoever acts on it opens a fresh connection.
        if conn is not None and conn.closed_by_peer and self._on_closed is not None:
            self._on_closed(endpoint)

    async def _open(self, endpoint: PeerEndpoint, context: ssl.SSLContext | None) -> trio.abc.Stream:
        """A connected stream to endpoint, TLS handshake done unless it is a plain websocket."""
        if context is None:
            if not self._plaintext.allows(endpoint.ip):
                raise PeerUnreachable(
                    f"{endpoint} is not a loopback address: without TLS this node calls only "
                    "loopback peers (see --insecure-allow-network)"
                )
            return await open_tcp(endpoint, self._local_address)
        tcp = await open_tcp(endpoint, self._local_address)
        try:
            stream = await client_tls_handshake(tcp, endpoint, context)
        except PeerUnreachable as e:
            # Not a certificate problem (that is PeerAuthError): maybe a peer not yet on TLS.
            if endpoint in self._spoke_tls or not self._plaintext.allows(endpoint.ip):
                raise
            plain = await open_tcp(endpoint, self._local_address)
            if endpoint not in self._plain:
                log.info("peer API: %s, calling it over a plain websocket until it speaks TLS", e)
                self._plain.add(endpoint)
            return plain
        self._spoke_tls.add(endpoint)
        if endpoint in self._plain:
            log.info("peer API: %s speaks TLS now", endpoint)
            self._plain.discard(endpoint)
        return stream


class _Pending:
    def __init__(self) -> None:
        self.done = trio.Event()
        self.response: Response | None = None
        self.error: PeerError | None = None


class _Connection:
    def __init__(
        self,
        endpoint: PeerEndpoint,
        ws: WebSocket,
        tls: bool,
        peer_id: str | None,
        idle_timeout: float,
        context: ssl.SSLContext | None,
    ) -> None:
        self.endpoint = endpoint
        self.ws = ws
        self.tls = tls
        self.peer_id = peer_id
        self.context = context  # the SSL context it was opened with (None: no TLS configured)
        self.alive = True
        self.closed_by_peer = False  # the other side closed or broke it (not idle, not our close())
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._idle = IdleTimer(idle_timeout)
        self._scope = trio.CancelScope()

    async def call(self, template: Request) -> Any:
        """Send template under a fresh id and wait for its answer."""
        req_id = next(self._ids)
        frame = encode_request(replace(template, id=req_id))
        pending = _Pending()
        self._pending[req_id] = pending
        self._idle.busy += 1
        try:
            try:
                await self.ws.send(frame)
            except BaseException as e:
                # A send cut short leaves half a frame on the wire: this connection is done.
                self.close()
                if isinstance(e, WebSocketClosed):
                    raise PeerUnreachable(f"{template.method} to {self.endpoint}: {e}") from e
                raise
            await pending.done.wait()
        finally:
            del self._pending[req_id]
            self._idle.busy -= 1
            self._idle.touch()
        if pending.error is not None:
            raise pending.error
        assert pending.response is not None
        if pending.response.ok:
            return pending.response.result
        raise RpcError(pending.response.code, pending.response.message)

    async def run(self) -> None:
        """Deliver responses until the connection ends or idles out, then fail what is pending."""
        error: PeerError = PeerUnreachable(f"connection to {self.endpoint} closed")
        with self._scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._close_when_idle)
                try:
                    error = await self._receive_responses()
                except Exception as e:
                    # A bug here must not escape into the caller's nursery and end the daemon.
                    log.exception("peer API: connection to %s failed", self.endpoint)
                    error = PeerUnreachable(f"connection to {self.endpoint} failed: {e!r}")
                nursery.cancel_scope.cancel()
        self.alive = False
        for pending in self._pending.values():
            pending.error = copy.copy(error)  # each waiting task raises its own instance
            pending.done.set()

    async def _close_when_idle(self) -> None:
        await self._idle.expired()
        self.close()

    def close(self) -> None:
        self.alive = False
        self._scope.cancel()

    async def _receive_responses(self) -> PeerError:
        while True:
            try:
                frame = await self.ws.receive()
                resp = decode_response(frame)
            except WebSocketClosed as e:
                self.closed_by_peer = True
                return PeerUnreachable(f"connection to {self.endpoint} closed: {e}")
            except ProtocolError as e:
                log.warning("peer API: closing connection to %s: %s", self.endpoint, e)
                await self.ws.close(PROTOCOL_ERROR, "malformed frame")
                return ProtocolError(f"{self.endpoint} sent a malformed answer: {e}")
            pending = self._pending.get(resp.id)
            if pending is not None:  # else the caller gave up waiting for it
                pending.response = resp
                pending.done.set()
