"""The metrics and health port's HTTP server: fixed pages by GET and HEAD, bounded, never crashing."""

from __future__ import annotations

from collections.abc import Mapping

import trio

from etcdmgr.ops import http
from etcdmgr.ops.http import Response, serve_http, text


async def hello(headers: Mapping[str, str]) -> Response:
    return text(200, f"hello {headers.get('accept', 'nobody')}")


async def broken(headers: Mapping[str, str]) -> Response:
    raise RuntimeError("a bug")


ROUTES = {"/hello": hello, "/broken": broken}


async def start(nursery: trio.Nursery) -> int:
    port: int = await nursery.start(serve_http, ROUTES, "127.0.0.1", 0)
    return port


async def exchange(port: int, raw: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(raw)
        out = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                out += chunk
    return out


async def test_get_answers_the_route_and_head_only_its_headers() -> None:
    async with trio.open_nursery() as nursery:
        port = await start(nursery)
        answer = await exchange(
            port, b"GET /hello?x=1 HTTP/1.1\r\nHost: a\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer.endswith(b"\r\n\r\nhello text/plain\n")
        head = await exchange(port, b"HEAD /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"content-length: 13\r\n" in head
        assert head.endswith(b"\r\n\r\n"), "no body after HEAD"
        nursery.cancel_scope.cancel()


async def test_two_requests_on_one_kept_alive_connection() -> None:
    async with trio.open_nursery() as nursery:
        port = await start(nursery)
        answer = await exchange(
            port,
            b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        assert answer.count(b"HTTP/1.1 200 OK") == 2
        nursery.cancel_scope.cancel()


async def test_unknown_pages_other_methods_bugs_and_garbage_get_an_error_status() -> None:
    async with trio.open_nursery() as nursery:
        port = await start(nursery)
        close = b"Host: a\r\nConnection: close\r\n\r\n"
        assert (await exchange(port, b"GET /nope HTTP/1.1\r\n" + close)).startswith(b"HTTP/1.1 404 ")
        post = b"POST /hello HTTP/1.1\r\nContent-Length: 3\r\n" + close + b"abc"
        assert (await exchange(port, post)).startswith(b"HTTP/1.1 405 ")
        assert (await exchange(port, b"GET /broken HTTP/1.1\r\n" + close)).startswith(b"HTTP/1.1 500 ")
        assert (await exchange(port, b"\x16\x03\x01 not http at all\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        # The server still serves after all that.
        assert (await exchange(port, b"GET /hello HTTP/1.1\r\n" + close)).startswith(b"HTTP/1.1 200 ")
        nursery.cancel_scope.cancel()


async def test_an_oversized_request_head_is_refused() -> None:
    async with trio.open_nursery() as nursery:
        port = await start(nursery)
        huge = b"GET /hello HTTP/1.1\r\nX: " + b"a" * (http.MAX_REQUEST + 10) + b"\r\n\r\n"
        assert (await exchange(port, huge)).startswith(b"HTTP/1.1 400 ")
        nursery.cancel_scope.cancel()


async def test_connections_beyond_the_cap_are_closed_and_a_silent_one_times_out(autojump_clock: object) -> None:
    async with trio.open_nursery() as nursery:
        port = await start(nursery)
        idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(http.MAX_CONNECTIONS)]
        await trio.sleep(0.1)
        assert await exchange(port, b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n") == b"", "full: closed at once"
        # A connection that sends nothing is closed after the request deadline, freeing its slot.
        with trio.fail_after(http.REQUEST_TIMEOUT + 1):
            assert await idle[0].receive_some(100) == b""
        for stream in idle:
            await stream.aclose()
        await trio.sleep(0.1)
        answer = await exchange(port, b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 ")
        nursery.cancel_scope.cancel()
