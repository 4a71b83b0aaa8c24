"""The peer API server: accepts mutual-TLS websockets and runs each request in its own task."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from etcdmgr.peer.codec import MAX_FRAME, Request, Response, decode_request, encode_response
from etcdmgr.peer.errors import PeerAuthError, ProtocolError, RpcError
from etcdmgr.peer.streams import IdleTimer, remote_address, server_tls_handshake
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
    ssl_context: ssl.SSLContext | None,
    *,
    handshake_timeout: float = 5,
    idle_timeout: float = IDLE_TIMEOUT,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the peer API on host:port until cancelled; reports the bound port when listening.

    handler(request, caller_peer_id) returns the result or raises RpcError to refuse; the
    caller's id comes from its client certificate (None without TLS). Any other exception
    is logged and answered with code "internal".
    """
    tcp_listeners = await trio.open_tcp_listeners(port, host=host)
    # open_tcp_listeners binds one socket per address of host; a literal IP gives exactly one.
    bound: int = tcp_listeners[0].socket.getsockname()[1]
    listeners: list[trio.abc.Listener[trio.abc.Stream]] = list(tcp_listeners)
    if ssl_context is not None:
        listeners = [trio.SSLListener(tcp, ssl_context) for tcp in tcp_listeners]
    log.info(
        "peer API listening on %s:%d (%s)",
        host,
        bound,
        "mutual TLS" if ssl_context else "INSECURE: plain websockets, callers are not authenticated",
    )
    serve = partial(
        _serve_connection, handler=handler, handshake_timeout=handshake_timeout, idle_timeout=idle_timeout
    )
    task_status.started(bound)
    await trio.serve_listeners(serve, listeners)


async def _serve_connection(
    stream: trio.abc.Stream, *, handler: Handler, handshake_timeout: float, idle_timeout: float
) -> None:
    # One bad connection must never take the server down: everything ends here.
    remote = remote_address(stream)
    try:
        with trio.fail_after(handshake_timeout):
            caller = await server_tls_handshake(stream)
            ws = await server_handshake(stream, MAX_FRAME)
        await _Session(ws, handler, caller, remote, idle_timeout).run()
    except trio.TooSlowError:
        log.warning("peer API: %s did not finish its handshake within %gs", remote, handshake_timeout)
    except PeerAuthError as e:
        log.warning("peer API: refused connection from %s: %s", remote, e)
    except WebSocketClosed as e:
        log.debug("peer API: connection from %s ended: %s", remote, e)
    except Exception:
        log.exception("peer API: connection from %s failed", remote)
    finally:
        await trio.aclose_forcefully(stream)


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
