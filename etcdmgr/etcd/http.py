"""etcd over HTTP: /health, the v2 keyspace, and batched create-if-absent v3 puts (JSON gateway).

Mixed into EtcdClient (etcd/client.py), which holds the endpoints, TLS files and timeout.
"""

from __future__ import annotations

import base64
import functools
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import trio

from etcdmgr.etcd._tool import budget, deadline
from etcdmgr.etcd.errors import EtcdError, EtcdUnavailable
from etcdmgr.etcd.v2_load import put_v2_keys
from etcdmgr.etcd.versions import version_key
from etcdmgr.model.tls import ClientTLS

HEALTH_TIMEOUT = 2.0
V2_DUMP_TIMEOUT = 60.0


class V2Node(NamedTuple):
    """One v2 key: value None means a directory (only empty ones or ones with a TTL are listed;
    others come back by creating their keys)."""

    key: str
    value: str | None
    ttl: int | None


class HttpCalls:
    """The HTTP calls of EtcdClient: urllib in a worker thread, bounded by the call's budget."""

    endpoints: list[str]
    tls: ClientTLS | None
    timeout: float

    @functools.cached_property
    def _ssl(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        ctx = ssl.create_default_context(cafile=str(self.tls.ca))
        if self.tls.cert and self.tls.key:
            ctx.load_cert_chain(str(self.tls.cert), str(self.tls.key))
        return ctx

    async def _http(
        self,
        method: str,
        url: str,
        limit: float,
        body: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> tuple[int, Any]:
        """(status, parsed JSON body) of one request; etcd's v2 errors come as JSON with 4xx."""
        seconds = budget(limit)

        def call() -> tuple[int, Any]:
            if json_body is not None:
                data: bytes | None = json.dumps(json_body).encode()
                content_type = "application/json"
            else:
                data = urllib.parse.urlencode(body).encode() if body is not None else None
                content_type = "application/x-www-form-urlencoded"
            req = urllib.request.Request(url, data=data, method=method)
            if data is not None:
                req.add_header("Content-Type", content_type)
            try:
                with urllib.request.urlopen(req, timeout=seconds, context=self._ssl) as resp:
                    return resp.status, json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as e:
                raw = e.read()
                try:
                    return e.code, json.loads(raw)
                except ValueError:
                    return e.code, {"message": raw.decode(errors="replace").strip()}

        try:
            # The thread is abandoned on cancellation; urlopen's own timeout ends it soon after.
            with deadline(seconds, f"{method} {url}"):
                return await trio.to_thread.run_sync(call, abandon_on_cancel=True)
        except (OSError, ValueError) as e:  # URLError, ssl errors, timeouts, bad JSON
            raise EtcdUnavailable(f"{method} {url}: {e}") from e

    async def endpoint_health(self, endpoint: str) -> bool:
        """Does this member serve, with a leader and quorum (etcd's /health)? Never raises."""
        try:
            status, body = await self._http("GET", f"{endpoint.rstrip('/')}/health", HEALTH_TIMEOUT)
        except EtcdUnavailable:
            return False
        return status == 200 and isinstance(body, dict) and body.get("health") in ("true", True)

    async def dump_v2(self) -> list[V2Node]:
        """Every v2 key (needs --enable-v2), parents before children, TTLs as seconds left.

        Keys whose name starts with "_" are hidden by the v2 API and not listed.
        """
        last: EtcdError | None = None
        for endpoint in self.endpoints:
            url = f"{endpoint.rstrip('/')}/v2/keys/?recursive=true&sorted=true"
            try:
                status, body = await self._http("GET", url, V2_DUMP_TIMEOUT)
            except EtcdUnavailable as e:
                last = e
                continue
            if status == 404 and not (isinstance(body, dict) and "errorCode" in body):
                # The root of the v2 keyspace always exists: a plain 404 means no v2 API.
                raise EtcdError(
                    f"v2 dump from {endpoint}: the member does not serve the v2 API (HTTP 404); "
                    "if that is on purpose, give every daemon ETCD_ENABLE_V2=false, and its backups "
                    "leave the v2 keyspace out"
                )
            if status != 200:
                raise EtcdError(f"v2 dump from {endpoint}: HTTP {status}: {_v2_message(body)}")
            out: list[V2Node] = []
            _walk_v2(body.get("node") or {}, out)
            return out
        assert last is not None
        raise last

    async def load_v2(self, items: Iterable[V2Node]) -> int:
        """Write v2 keys (as dump_v2 returns them) through the first endpoint, several at once
        (etcd/v2_load.py); returns the count."""
        return await put_v2_keys(self.endpoints[0].rstrip("/"), list(items), self._ssl, self.timeout)

    async def put_absent(
        self, items: Sequence[tuple[str, str]], server_version: str, batch: int = 100
    ) -> tuple[int, int]:
        """Put the v3 keys that do not exist yet, leaving every existing key as it is; returns
        (written, skipped). Through the JSON gateway, `batch` keys per transaction (etcd allows
        128 operations of each kind per txn by default): the puts apply only if every key of the
        batch is absent (create_revision 0); otherwise the failure branch lists the ones present,
        and the rest is tried again."""
        endpoint = self.endpoints[0].rstrip("/")
        # The gateway moved from /v3beta (3.3) to /v3 (3.4 on).
        url = f"{endpoint}{'/v3beta' if version_key(server_version) < (3, 4, 0) else '/v3'}/kv/txn"
        written = skipped = 0
        for start in range(0, len(items), batch):
            pending = dict(items[start : start + batch])
            while pending:
                txn = {
                    "compare": [
                        {"key": _b64e(k), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
                        for k in pending
                    ],
                    "success": [
                        {"request_put": {"key": _b64e(k), "value": _b64e(v)}} for k, v in pending.items()
                    ],
                    "failure": [{"request_range": {"key": _b64e(k), "keys_only": True}} for k in pending],
                }
                status, reply = await self._http("POST", url, self.timeout, json_body=txn)
                if status != 200 or not isinstance(reply, dict):
                    raise EtcdError(f"v3 txn of {len(pending)} puts: HTTP {status}: {_v2_message(reply)}")
                if reply.get("succeeded"):  # proto3 JSON leaves a false out
                    written += len(pending)
                    break
                present = _ranged_keys(reply) & pending.keys()
                if not present:
                    raise EtcdError(f"v3 txn of {len(pending)} puts failed its compare, yet no key exists")
                skipped += len(present)
                for k in present:
                    del pending[k]
        return written, skipped


def _b64e(s: str) -> str:
    return base64.b64encode(s.encode(errors="surrogateescape")).decode()


def _ranged_keys(reply: dict[str, Any]) -> set[str]:
    """The keys the range responses of a txn answer list."""
    return {
        _b64d(kv.get("key", ""))
        for r in reply.get("responses") or []
        for kv in (r.get("response_range") or r.get("responseRange") or {}).get("kvs") or []
    }


def _b64d(s: str) -> str:
    return base64.b64decode(s).decode(errors="surrogateescape")


def _v2_message(body: Any) -> str:
    if isinstance(body, dict):
        return " ".join(str(body[k]) for k in ("message", "cause") if body.get(k))
    return str(body)


def _walk_v2(node: dict[str, Any], out: list[V2Node]) -> None:
    ttl = int(node["ttl"]) if "ttl" in node else None
    key = str(node.get("key", ""))
    if node.get("dir"):
        children = node.get("nodes") or []
        if key and (not children or ttl is not None):
            out.append(V2Node(key, None, ttl))
        for child in children:
            _walk_v2(child, out)
    else:
        out.append(V2Node(key, str(node.get("value", "")), ttl))
