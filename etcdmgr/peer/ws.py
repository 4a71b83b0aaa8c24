"""A small websocket endpoint over an established trio stream, built on wsproto.

trio-websocket runs its own reader task that swallows stream errors: a TLS alert during the
upgrade left the caller waiting for its timeout, and a rejected upgrade raised inside that
background task. Here the caller reads the stream itself, so every failure surfaces where it
happens, with the underlying error (e.g. an ssl.SSLError) kept as __cause__.

Binary messages only; no extensions (no compression, so no decompression bombs).
"""

from __future__ import annotations

import contextlib
from collections import deque

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from etcdmgr.peer.errors import innermost_reason

RECEIVE_CHUNK = 64 * 1024
PATH = "/etcdmgr/v1"

# Close codes (RFC 6455 section 7.4.1).
NORMAL = 1000
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
TOO_BIG = 1009


class WebSocketClosed(Exception):
    """The connection is over: closed by either side, broken, or the peer broke the protocol."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"websocket closed ({code}): {reason}" if reason else f"websocket closed ({code})")
        self.code = code
        self.reason = reason


class WebSocket:
    def __init__(self, stream: trio.abc.Stream, ws: WSConnection, max_message: int) -> None:
        self.stream = stream
        self._ws = ws
        self._max_message = max_message
        self._send_lock = trio.StrictFIFOLock()
        self._parts: list[bytes] = []
        self._size = 0
        self._ready: deque[bytes] = deque()
        self._closed: WebSocketClosed | None = None

    async def send(self, message: bytes) -> None:
        """Send one binary message; raises WebSocketClosed."""
        if self._closed:
            raise self._closed
        await self._send_event(BytesMessage(data=message))

    async def receive(self) -> bytes:
        """The next complete message. Only one task may receive at a time.

        Raises WebSocketClosed when the connection ends; a text or oversized message closes it.
        """
        while not self._ready:
            if self._closed:
                raise self._closed
            await self._process_events()
            if self._ready or self._closed:
                continue
            try:
                data = await self.stream.receive_some(RECEIVE_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                self._closed = WebSocketClosed(1006, f"connection broken: {innermost_reason(e)}")
                raise self._closed from e
            try:
                self._ws.receive_data(bytes(data) or None)
            except (RemoteProtocolError, LocalProtocolError) as e:
                await self._fail(PROTOCOL_ERROR, str(e))
        return self._ready.popleft()

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Send a close frame if still possible; the caller closes the stream afterwards."""
        if self._closed is None:
            self._closed = WebSocketClosed(code, reason)
        try:
            await self._send_event(CloseConnection(code=code, reason=reason))
        except WebSocketClosed:
            pass  # already closed or closing: nothing more to say

    async def _process_events(self) -> None:
        for event in self._ws.events():
            if isinstance(event, BytesMessage):
                self._size += len(event.data)
                if self._size > self._max_message:
                    await self._fail(TOO_BIG, f"message exceeds {self._max_message} bytes")
                    return
                self._parts.append(bytes(event.data))
                if event.message_finished:
                    self._ready.append(b"".join(self._parts))
                    self._parts, self._size = [], 0
            elif isinstance(event, TextMessage):
                await self._fail(UNSUPPORTED_DATA, "only binary messages are accepted")
                return
            elif isinstance(event, Ping):
                await self._send_quietly(event.response())
            elif isinstance(event, CloseConnection):
                await self._send_quietly(event.response())
                self._closed = WebSocketClosed(event.code, event.reason or "")
                return

    async def _fail(self, code: int, reason: str) -> None:
        await self.close(code, reason)
        self._closed = WebSocketClosed(code, reason)

    async def _send_quietly(self, event: Event) -> None:
        try:
            await self._send_event(event)
        except WebSocketClosed:
            pass  # a reply to a dying connection; the next receive reports the end

    async def _send_event(self, event: Event) -> None:
        async with self._send_lock:
            try:
                data = self._ws.send(event)
            except LocalProtocolError as e:
                raise self._closed or WebSocketClosed(1006, str(e)) from e
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                self._closed = self._closed or WebSocketClosed(
                    1006, f"connection broken: {innermost_reason(e)}"
                )
                raise self._closed from e


async def client_handshake(stream: trio.abc.Stream, host: str, max_message: int) -> WebSocket:
    """Upgrade stream as a client; raises WebSocketClosed when the server does not accept."""
    ws = WSConnection(ConnectionType.CLIENT)
    await _send_raw(stream, ws.send(Request(host=host, target=PATH)))
    event = await _first_event(stream, ws, (AcceptConnection, RejectConnection, RejectData))
    if not isinstance(event, AcceptConnection):
        raise WebSocketClosed(1006, f"upgrade refused: {event}")
    return WebSocket(stream, ws, max_message)


async def server_handshake(stream: trio.abc.Stream, max_message: int) -> WebSocket:
    """Accept the client's upgrade request; raises WebSocketClosed on anything else."""
    ws = WSConnection(ConnectionType.SERVER)
    event = await _first_event(stream, ws, (Request,))
    if not isinstance(event, Request) or event.target != PATH:
        await _send_raw(stream, ws.send(RejectConnection(status_code=404)))
        raise WebSocketClosed(1006, f"unexpected upgrade request {event}")
    await _send_raw(stream, ws.send(AcceptConnection()))
    return WebSocket(stream, ws, max_message)


async def _first_event(stream: trio.abc.Stream, ws: WSConnection, kinds: tuple[type[Event], ...]) -> Event:
    while True:
        try:
            for event in ws.events():
                if isinstance(event, kinds):
                    return event
            try:
                data = await stream.receive_some(RECEIVE_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                raise WebSocketClosed(1006, f"connection broken during upgrade: {innermost_reason(e)}") from e
            if not data:
                raise WebSocketClosed(1006, "connection closed during upgrade")
            ws.receive_data(bytes(data))
        except RemoteProtocolError as e:
            if e.event_hint is not None:
                # Tell an HTTP client what went wrong, if the connection still allows it.
                with contextlib.suppress(WebSocketClosed, LocalProtocolError):
                    await _send_raw(stream, ws.send(e.event_hint))
            raise WebSocketClosed(PROTOCOL_ERROR, f"bad upgrade: {e}") from e


async def _send_raw(stream: trio.abc.Stream, data: bytes) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
        raise WebSocketClosed(1006, f"connection broken during upgrade: {innermost_reason(e)}") from e
