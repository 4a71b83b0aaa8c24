"""The peer API server: accepts mutual-TLS websockets and runs each request in its own task.

Before a caller is authenticated it gets only a bounded slot (peer/limits.py) and the handshake
deadline; plain websockets are taken only from whom the Plaintext policy names.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from etcdmgr.peer.codec import MAX_FRAME, Request, Response, decode_request, encode_response
from etcdmgr.peer.errors import PeerAuthError, PeerError, ProtocolError, RpcError
from etcdmgr.peer.limits import ConnectionLimits, Throttled
from etcdmgr.peer.streams import (
    IdleTimer,
    Plaintext,
    TlsSource,
    current_context,
    remote_address,
    remote_ip,
    server_tls_handshake,
)
from etcdmgr.peer.ws import PROTOCOL_ERROR, WebSocket, WebSocketClosed, server_handshake

log = logging.getLogger(__name__)

Handler = Callable[[Request, str | None], Awaitable[Any]]

IDLE_TIMEOUT = 120.0  # longer than the client's, so that the client is the one to hang up
MAX_IN_FLIGHT = 64  # per connection; beyond it the server stops reading (back pressure)
MAX_ERROR_MESSAGE = 2000


async def serve_peers(
    handler: Handler,
    host: str,
    port: int,
    ssl_context: TlsSource | None,
    *,
    plaintext: Plaintext = Plaintext.NEVER,
    handshake_timeout: float = 5,
    idle_timeout: float = IDLE_TIMEOUT,
    limits: ConnectionLimits | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the peer API on host:port until cancelled; reports the bound port when listening.

    handler(request, caller_peer_id) returns the result or raises RpcError to refuse; the
    caller's id comes from its client certificate (None on a plain websocket). Any other
    exception is logged and answered with code "internal".

    plaintext says from whom plain websockets are taken: every connection without ssl_context;
    with one, a connection whose first byte does not start a TLS record (a daemon moving to TLS
    serves both on one port).
    """
    if ssl_context is None and plaintext is Plaintext.NEVER:
        raise ValueError("a peer API without TLS must accept plain websockets from someone")
    try:
        tcp_listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as e:  # e.g. another daemon of this cluster on the same address: one line, no traceback
        raise PeerError(f"cannot serve the peer API on {host}:{port}: {e.strerror or e}") from None
    # open_tcp_listeners binds one socket per address of host; a literal IP gives exactly one.
    bound: int = tcp_listeners[0].socket.getsockname()[1]
    level = logging.INFO if plaintext is not Plaintext.ANYWHERE else logging.WARNING
    log.log(level, "peer API listening on %s:%d (%s)", host, bound, _describe(ssl_context, plaintext))
    server = _Server(
        handler, ssl_context, plaintext, limits or ConnectionLimits(), handshake_timeout, idle_timeout
    )
    task_status.started(bound)
    await trio.serve_listeners(server.serve_connection, tcp_listeners)


def _describe(ssl_context: TlsSource | None, plaintext: Plaintext) -> str:
    if ssl_context is None:
        who = (
            "from anyone on the network"
            if plaintext is Plaintext.ANYWHERE
            else "from loopback addresses only"
        )
        return f"INSECURE: plain websockets {who}, callers are not authenticated"
    if plaintext is Plaintext.NEVER:
        return "mutual TLS"
    if plaintext is Plaintext.LOOPBACK:
        return "mutual TLS, and plain websockets from loopback addresses while moving to TLS"
    return "mutual TLS, and INSECURE plain websockets from anyone while moving to TLS"


class _Server:
    def __init__(
        self,
        handler: Handler,
        ssl_context: TlsSource | None,
        plaintext: Plaintext,
        limits: ConnectionLimits,
        handshake_timeout: float,
        idle_timeout: float,
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.plaintext = plaintext
        self.limits = limits
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.report = Throttled(log)  # refusals come as fast as anyone can connect

    async def serve_connection(self, tcp: trio.SocketStream) -> None:
        # One bad connection must never take the server down: everything ends here.
        ip, remote = remote_ip(tcp), remote_address(tcp)
        refusal = self.limits.admit(ip)
        if refusal is not None:
            self.report.warn("limit", "peer API: refused a connection from %s: %s", remote, refusal)
            await trio.aclose_forcefully(tcp)
            return
        stream: trio.abc.Stream = tcp
        handshaking = True
        try:
            with trio.fail_after(self.handshake_timeout):
                stream, caller = await self._secure(tcp, ip)
                ws = await server_handshake(stream, MAX_FRAME)
            self.limits.handshake_done(ip)
            handshaking = False
            await _Session(ws, self.handler, caller, remote, self.idle_timeout).run()
        except trio.TooSlowError:
            self.report.warn(
                "slow", "peer API: %s did not finish its handshake within %gs", remote, self.handshake_timeout
            )
        except PeerAuthError as e:
            self.report.warn("refused", "peer API: refused connection from %s: %s", remote, e)
        except WebSocketClosed as e:
            log.debug("peer API: connection from %s ended: %s", remote, e)
        except Exception:
            log.exception("peer API: connection from %s failed", remote)
        finally:
            self.limits.release(ip, handshaking=handshaking)
            await trio.aclose_forcefully(stream)

    async def _secure(self, tcp: trio.SocketStream, ip: str) -> tuple[trio.abc.Stream, str | None]:
        """The stream to speak websockets on, and the caller's id (None on a plain websocket)."""
        if self.ssl_context is None:
            tls = False
        elif self.plaintext is Plaintext.NEVER:
            tls = True
        else:
            # A TLS connection starts with a handshake record (0x16); an HTTP upgrade with "GET".
            tls = await tcp.socket.recv(1, socket.MSG_PEEK) == b"\x16"
        if tls:
            assert self.ssl_context is not None
            stream = trio.SSLStream(tcp, current_context(self.ssl_context), server_side=True)
            return stream, await server_tls_handshake(stream)
        if not self.plaintext.allows(ip):
            raise PeerAuthError(
                "a plain websocket: mutual TLS is required"
                if self.plaintext is Plaintext.NEVER
                else "a plain websocket from a non-loopback address (see --insecure-allow-network)"
            )
        return tcp, None


class _Session:
    def __init__(self, ws: WebSocket, handler: Handler, caller: str | None, remote: str, idle: float) -> None:
        self.ws = ws
        self.handler = handler
        self.caller = caller
        self.remote = remote
        self.idle = IdleTimer(idle)
        self.slots = trio.Semaphore(MAX_IN_FLIGHT)

    async def run(self) -> None:
        """Read requests until the connection ends or idles out; then cancel what is in flight."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._close_when_idle, nursery.cancel_scope)
            try:
                await self._read_requests(nursery)
            except WebSocketClosed as e:
                log.debug("peer API: connection from %s ended: %s", self.remote, e)
            nursery.cancel_scope.cancel()  # nobody is left to read the answers

    async def _close_when_idle(self, scope: trio.CancelScope) -> None:
        await self.idle.expired()
        log.debug("peer API: closing idle connection from %s", self.remote)
        scope.cancel()

    async def _read_requests(self, nursery: trio.Nursery) -> None:
        while True:
            frame = await self.ws.receive()
            self.idle.touch()
            try:
                req = decode_request(frame)
            except ProtocolError as e:
                if e.request_id is None:
                    log.warning("peer API: closing connection from %s: %s", self.remote, e)
                    await self.ws.close(PROTOCOL_ERROR, "malformed frame")
                    return
                await self._send(Response.failure(e.request_id, "bad-request", str(e)))
                continue
            await self.slots.acquire()
            self.idle.busy += 1
            nursery.start_soon(self._serve_request, req)

    async def _serve_request(self, req: Request) -> None:
        try:
            await self._send(await self._answer(req))
        finally:
            self.idle.busy -= 1
            self.idle.touch()
            self.slots.release()

    async def _answer(self, req: Request) -> Response:
        if self.caller is not None and req.sender != self.caller:
            message = f"request says it is from {req.sender!r}, the certificate is {self.caller!r}'s"
            return Response.failure(req.id, "forbidden", message)
        try:
            return Response.success(req.id, await self.handler(req, self.caller))
        except RpcError as e:
            return Response.failure(req.id, e.code, e.message)
        except Exception as e:
            log.exception("peer API: %s from %s failed", req.method, self.caller or self.remote)
            message = f"{req.method} failed: {type(e).__name__}: {e}"
            return Response.failure(req.id, "internal", message[:MAX_ERROR_MESSAGE])

    async def _send(self, resp: Response) -> None:
        try:
            frame = encode_response(resp)
        except ProtocolError as e:
            log.error("peer API: cannot send the answer to request %d: %s", resp.id, e)
            message = f"unsendable answer: {e}"[:MAX_ERROR_MESSAGE]
            frame = encode_response(Response.failure(resp.id, "internal", message))
        try:
            await self.ws.send(frame)
        except WebSocketClosed:
            pass  # the caller is gone; the read loop notices and ends the session
