"""A client for one etcd cluster: membership, health, status, snapshots and keys through
etcdctl (v3 API), and the v2 keyspace over HTTP."""

from __future__ import annotations

import base64
import functools
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import trio

from etcdmgr.etcd._tool import budget, deadline, go_duration, run_tool
from etcdmgr.etcd.errors import EtcdError, EtcdUnavailable
from etcdmgr.etcd.versions import EtcdBinaries, supports_learners, version_key
from etcdmgr.model.tls import ClientTLS

# Default limits per call; a caller's own cancel scope around a call shortens them (see budget).
DEFAULT_TIMEOUT = 10.0
HEALTH_TIMEOUT = 2.0
STATUS_TIMEOUT = 3.0
SNAPSHOT_TIMEOUT = 300.0
V2_DUMP_TIMEOUT = 60.0
# etcdctl gets this much less than our deadline, so that it reports its (more precise) error first.
_SLACK = 1.0


@dataclass(frozen=True)
class Member:
    id: int
    name: str  # "" until a newly added member has started
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool = False

    @property
    def hex_id(self) -> str:
        """The form etcdctl takes and prints."""
        return f"{self.id:x}"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Member:
        return cls(
            id=int(d["ID"]),
            name=str(d.get("name") or ""),
            peer_urls=tuple(d.get("peerURLs") or ()),
            client_urls=tuple(d.get("clientURLs") or ()),
            is_learner=bool(d.get("isLearner", False)),
        )


@dataclass(frozen=True)
class EndpointStatus:
    endpoint: str
    member_id: int
    leader_id: int
    version: str
    db_size: int
    raft_index: int
    raft_term: int
    revision: int
    is_learner: bool


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str
    create_revision: int
    mod_revision: int
    version: int


class V2Node(NamedTuple):
    """One v2 key: value None means a directory (only empty ones or ones with a TTL are listed;
    others come back by creating their keys)."""

    key: str
    value: str | None
    ttl: int | None


def _b64(s: str | None) -> str:
    # Keys and values are bytes in etcd; surrogateescape keeps non-UTF-8 bytes round-trippable.
    return base64.b64decode(s or "").decode(errors="surrogateescape")


class EtcdClient:
    """Talks to the members at `endpoints` with the etcdctl of `binaries`.

    Every call is bounded: by `timeout` (or a per-call default), or sooner by the caller's own
    deadline; running out raises EtcdTimeout.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        binaries: EtcdBinaries,
        tls: ClientTLS | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        if not endpoints:
            raise ValueError("EtcdClient needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.binaries = binaries
        self.tls = tls
        self.timeout = timeout

    # --- etcdctl ---------------------------------------------------------------------------

    async def _ctl(
        self,
        args: Sequence[str],
        what: str,
        *,
        endpoints: Sequence[str] | None = None,
        limit: float | None = None,
        json_out: bool = True,
    ) -> Any:
        seconds = budget(limit or self.timeout)
        inner = max(seconds - _SLACK, seconds / 2)
        cmd = [
            str(self.binaries.etcdctl),
            f"--endpoints={','.join(endpoints or self.endpoints)}",
            f"--command-timeout={go_duration(inner)}",
            f"--dial-timeout={go_duration(min(inner, 5.0))}",
        ]
        if self.tls:
            cmd.append(f"--cacert={self.tls.ca}")
            if self.tls.cert and self.tls.key:
                cmd += [f"--cert={self.tls.cert}", f"--key={self.tls.key}"]
        if json_out:
            cmd += ["-w", "json"]
        with deadline(seconds, what):
            out = await run_tool([*cmd, *args], what)
        if not json_out:
            return out
        try:
            return json.loads(out)
        except ValueError as e:
            raise EtcdError(f"{what}: etcdctl printed no JSON: {out[:200]!r}") from e

    async def member_list(self) -> list[Member]:
        data = await self._ctl(["member", "list"], "member list")
        return sorted((Member.from_json(m) for m in data.get("members") or []), key=lambda m: m.id)

    async def member_add(self, name: str, peer_urls: Sequence[str], learner: bool = False) -> Member:
        """Register a member before it starts (it then starts with initial-cluster-state=existing)."""
        if learner and not supports_learners(self.binaries.version):
            raise EtcdError(f"learner members need etcd 3.4 or newer, not {self.binaries.version}")
        args = ["member", "add", f"--peer-urls={','.join(peer_urls)}"]
        if learner:
            args.append("--learner")
        args += ["--", name]  # a name may start with "-" (ids are URL-safe base64)
        data = await self._ctl(args, f"member add {name}")
        m = Member.from_json(data["member"])
        return Member(m.id, name, m.peer_urls, m.client_urls, learner)

    async def member_remove(self, member_id: int) -> None:
        what = f"member remove {member_id:x}"
        await self._ctl(["member", "remove", f"{member_id:x}"], what, json_out=False)

    async def member_update(self, member_id: int, peer_urls: Sequence[str]) -> None:
        """Change the peer URLs the other members dial (e.g. http -> https when enabling TLS)."""
        what = f"member update {member_id:x}"
        await self._ctl(
            ["member", "update", f"{member_id:x}", f"--peer-urls={','.join(peer_urls)}"], what, json_out=False
        )

    async def member_promote(self, member_id: int) -> None:
        """Learner -> voting member; EtcdTransient until the learner has caught up."""
        await self._ctl(
            ["member", "promote", f"{member_id:x}"], f"member promote {member_id:x}", json_out=False
        )

    async def endpoint_status(self, endpoint: str) -> EndpointStatus:
        """Raft and storage facts of one member (its version, its leader's id, revision, db size)."""
        data = await self._ctl(
            ["endpoint", "status"], f"endpoint status {endpoint}", endpoints=[endpoint], limit=STATUS_TIMEOUT
        )
        s = data[0]["Status"]
        header = s.get("header") or {}
        return EndpointStatus(
            endpoint=data[0].get("Endpoint", endpoint),
            member_id=int(header.get("member_id", 0)),
            leader_id=int(s.get("leader", 0)),
            version=str(s.get("version", "")),
            db_size=int(s.get("dbSize", 0)),
            raft_index=int(s.get("raftIndex", 0)),
            raft_term=int(s.get("raftTerm", 0)),
            revision=int(header.get("revision", 0)),
            is_learner=bool(s.get("isLearner", False)),
        )

    async def snapshot_save(self, dest: Path, endpoint: str | None = None) -> None:
        """A v3 snapshot of one member's keyspace to `dest` (written whole or not at all).

        It holds the v3 keys with their revisions and leases, but no v2 keys (see dump_v2).
        """
        part = dest.with_name(dest.name + ".part")
        await self._ctl(
            ["snapshot", "save", str(part)],
            "snapshot save",
            endpoints=[endpoint or self.endpoints[0]],
            limit=SNAPSHOT_TIMEOUT,
            json_out=False,
        )
        part.replace(dest)

    async def put(self, key: str, value: str) -> None:
        await self._ctl(["put", "--", key, value], f"put {key}", json_out=False)

    async def get(self, key: str) -> str | None:
        kvs = await self._get([key], f"get {key}")
        return kvs[0].value if kvs else None

    async def get_prefix(self, prefix: str) -> list[KeyValue]:
        return await self._get(["--prefix", prefix], f"get --prefix {prefix}")

    async def _get(self, args: Sequence[str], what: str) -> list[KeyValue]:
        data = await self._ctl(["get", *args[:-1], "--", args[-1]], what)
        return [
            KeyValue(
                key=_b64(kv.get("key")),
                value=_b64(kv.get("value")),
                create_revision=int(kv.get("create_revision", 0)),
                mod_revision=int(kv.get("mod_revision", 0)),
                version=int(kv.get("version", 0)),
            )
            for kv in data.get("kvs") or []
        ]

    # --- HTTP: health and the v2 keyspace ---------------------------------------------------

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
            if status != 200:
                raise EtcdError(f"v2 dump from {endpoint}: HTTP {status}: {_v2_message(body)}")
            out: list[V2Node] = []
            _walk_v2(body.get("node") or {}, out)
            return out
        assert last is not None
        raise last

    async def load_v2(self, items: Iterable[V2Node]) -> int:
        """Write v2 keys (as dump_v2 returns them) through the first endpoint; returns the count."""
        endpoint = self.endpoints[0].rstrip("/")
        count = 0
        for node in items:
            body = {"dir": "true"} if node.value is None else {"value": node.value}
            if node.ttl is not None:
                body["ttl"] = str(node.ttl)
            url = f"{endpoint}/v2/keys{urllib.parse.quote(node.key)}"
            status, reply = await self._http("PUT", url, self.timeout, body)
            if status not in (200, 201):
                raise EtcdError(f"v2 put {node.key}: HTTP {status}: {_v2_message(reply)}")
            count += 1
        return count

    async def put_many(self, items: Sequence[tuple[str, str]], server_version: str, batch: int = 100) -> int:
        """Put many v3 keys through the JSON gateway, `batch` puts per transaction (etcd allows
        128 operations per txn by default); far faster than one etcdctl process per key."""
        endpoint = self.endpoints[0].rstrip("/")
        # The gateway moved from /v3beta (3.3) to /v3 (3.4 on).
        prefix = "/v3beta" if version_key(server_version) < (3, 4, 0) else "/v3"
        for start in range(0, len(items), batch):
            ops = [
                {"requestPut": {"key": _b64e(k), "value": _b64e(v)}} for k, v in items[start : start + batch]
            ]
            status, reply = await self._http(
                "POST", f"{endpoint}{prefix}/kv/txn", self.timeout, json_body={"success": ops}
            )
            if status != 200:
                raise EtcdError(f"v3 txn of {len(ops)} puts: HTTP {status}: {_v2_message(reply)}")
        return len(items)


def _b64e(s: str) -> str:
    return base64.b64encode(s.encode(errors="surrogateescape")).decode()


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
