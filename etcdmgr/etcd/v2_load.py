"""Writing many v2 keys fast: a few worker threads, each over one kept-alive HTTP connection.

One PUT per key through a new connection each (urllib) managed about 1,200 keys/s; etcd takes
many more when they arrive over several connections at once. Directories (empty ones, or ones
with a TTL) are written first, in order, so that a key never creates its parent without that
parent's TTL; then the keys, in any order (a key's parents exist or are created with it).
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse
from collections.abc import Sequence
from functools import partial
from typing import Any

import trio

from etcdmgr.etcd.errors import EtcdError, EtcdUnavailable

WORKERS = 32  # connections at once: each waits mostly on etcd committing its put, so etcd batches them
# (key, value, ttl) as etcd/http.py's V2Node: value None is a directory.
Node = tuple[str, str | None, int | None]


def _body(value: str | None, ttl: int | None) -> bytes:
    fields = {"dir": "true"} if value is None else {"value": value}
    if ttl is not None:
        fields["ttl"] = str(ttl)
    return urllib.parse.urlencode(fields).encode()


class _Writer:
    """PUTs v2 keys over one connection (blocking; one per worker thread)."""

    def __init__(self, endpoint: str, context: ssl.SSLContext | None, timeout: float) -> None:
        url = urllib.parse.urlsplit(endpoint)
        self._host, self._port = url.hostname or "", url.port
        self._https, self._context, self._timeout = url.scheme == "https", context, timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._context
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._conn

    def put(self, node: Node) -> None:
        key, value, ttl = node
        path = f"/v2/keys{urllib.parse.quote(key)}"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: once more
            conn = self._connection()
            try:
                conn.request("PUT", path, body=_body(value, ttl), headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if attempt == 2:
                    raise EtcdUnavailable(f"v2 put {key}: {e}") from None
                continue
            if resp.status not in (200, 201):
                raise EtcdError(f"v2 put {key}: HTTP {resp.status}: {_message(raw)}")
            return

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _message(raw: bytes) -> str:
    try:
        body: Any = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()
    return str(body.get("message", body)) if isinstance(body, dict) else str(body)


async def put_v2_keys(
    endpoint: str, nodes: Sequence[Node], context: ssl.SSLContext | None, timeout: float
) -> int:
    """Write ``nodes`` (as dump_v2 lists them) through ``endpoint``; the count written. Stops at
    the first failure (raised); cancellation stops the workers after their current key."""
    dirs = [n for n in nodes if n[1] is None]
    keys = [n for n in nodes if n[1] is not None]
    stop = threading.Event()
    errors: list[Exception] = []

    def write(share: Sequence[Node]) -> None:
        writer = _Writer(endpoint, context, timeout)
        try:
            for node in share:
                if stop.is_set():
                    return
                writer.put(node)
        except Exception as e:
            errors.append(e)
            stop.set()  # the other workers stop too
        finally:
            writer.close()

    try:
        await trio.to_thread.run_sync(write, dirs, abandon_on_cancel=True)
        if not errors:
            async with trio.open_nursery() as nursery:
                for i in range(WORKERS):
                    nursery.start_soon(
                        partial(trio.to_thread.run_sync, write, keys[i::WORKERS], abandon_on_cancel=True)
                    )
    finally:
        stop.set()
    if errors:
        raise errors[0]
    return len(nodes)
