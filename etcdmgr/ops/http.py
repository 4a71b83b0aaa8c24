"""A small read-only HTTP/1.1 server on trio streams (h11, which wsproto already brings) for
/metrics, /healthz and /readyz: GET and HEAD of fixed paths, nothing else.

It serves on the daemon's own event loop, bounded whatever clients do: at most MAX_CONNECTIONS
at once, MAX_REQUEST bytes of request head, and a deadline for each request to arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus

import h11
import trio

from etcdmgr.model.errors import EtcdmgrError

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 32  # scrapers and probes; a few at a time is the normal load
MAX_REQUEST = 16 * 1024
REQUEST_TIMEOUT = 10.0  # for a request to arrive, also between requests on a kept-alive connection
SEND_TIMEOUT = 10.0
RECEIVE_SIZE = 4096


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


def text(status: int, message: str) -> Response:
    return Response(status, message.encode() + b"\n")


# A route answers from the request's headers (lower-case names).
Route = Callable[[Mapping[str, str]], Awaitable[Response]]


async def serve_http(
    routes: Mapping[str, Route],
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `routes` (path -> route) on host:port until cancelled; reports the bound port."""
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as e:  # a port in use is the operator's to fix: one line, no traceback
        raise EtcdmgrError(f"cannot serve metrics on {host}:{port}: {e.strerror or e}") from None
    bound: int = listeners[0].socket.getsockname()[1]
    log.info("metrics and health on http://%s:%d (/metrics, /healthz, /readyz)", _host(host), bound)
    slots = trio.Semaphore(MAX_CONNECTIONS)
    task_status.started(bound)
    await trio.serve_listeners(partial(_connection, routes, slots), listeners)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _connection(routes: Mapping[str, Route], slots: trio.Semaphore, stream: trio.SocketStream) -> None:
    try:
        slots.acquire_nowait()
    except trio.WouldBlock:
        await trio.aclose_forcefully(stream)  # full: a client that keeps connections idle waits its turn
        return
    try:
        await _serve(routes, stream, h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST))
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, h11.ProtocolError):
        pass  # the client went away, was too slow or spoke no HTTP: nothing to answer
    finally:
        slots.release()
        await trio.aclose_forcefully(stream)


async def _serve(routes: Mapping[str, Route], stream: trio.SocketStream, conn: h11.Connection) -> None:
    while True:
        try:
            with trio.fail_after(REQUEST_TIMEOUT):
                request = await _request(stream, conn)
        except h11.RemoteProtocolError as e:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await _send(stream, conn, text(e.error_status_hint, "bad request"), head_only=False)
            return
        if request is None:
            return
        response = await _answer(routes, request)
        await _send(stream, conn, response, head_only=request.method == b"HEAD")
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return  # h11 says the connection cannot be reused (e.g. Connection: close)
        conn.start_next_cycle()


async def _request(stream: trio.SocketStream, conn: h11.Connection) -> h11.Request | None:
    """The next request, read to its end; None when the client closed the connection."""
    request: h11.Request | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(RECEIVE_SIZE))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif isinstance(event, h11.ConnectionClosed):
            return None
        # h11.Data: a body nobody reads here; PAUSED cannot come before the end of the request


async def _answer(routes: Mapping[str, Route], request: h11.Request) -> Response:
    if request.method not in (b"GET", b"HEAD"):
        return text(405, "only GET and HEAD")
    path = request.target.split(b"?", 1)[0].decode("ascii", "replace")
    route = routes.get(path)
    if route is None:
        return text(404, f"no such page; try {', '.join(sorted(routes))}")
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers}
    try:
        return await route(headers)
    except Exception:
        log.exception("answering %s failed", path)
        return text(500, "internal error (logged)")


async def _send(
    stream: trio.SocketStream, conn: h11.Connection, response: Response, *, head_only: bool
) -> None:
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        ("cache-control", "no-store"),
    ]
    events: list[h11.Event] = [
        h11.Response(status_code=response.status, headers=headers, reason=HTTPStatus(response.status).phrase)
    ]
    if not head_only:
        events.append(h11.Data(data=response.body))
    events.append(h11.EndOfMessage())
    with trio.fail_after(SEND_TIMEOUT):
        for event in events:
            data = conn.send(event)
            if data:
                await stream.send_all(data)
