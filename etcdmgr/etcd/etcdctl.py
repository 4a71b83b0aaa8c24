"""etcd's v3 API through etcdctl: membership, status, snapshots and keys, one process per call.

Mixed into EtcdClient (etcd/client.py), which holds the endpoints, binaries, TLS files and timeout.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from etcdmgr.etcd._tool import budget, deadline, go_duration, run_tool
from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.versions import EtcdBinaries, supports_learners
from etcdmgr.model.tls import ClientTLS
from etcdmgr.util.atomic import publish

STATUS_TIMEOUT = 3.0
SNAPSHOT_TIMEOUT = 300.0
# etcdctl gets this much less than our deadline, so that it reports its (more precise) error first.
_SLACK = 1.0


@dataclass(frozen=True)
class Member:
    id: int
    name: str  # "" until a newly added member has started
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool = False

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


def _b64(s: str | None) -> str:
    # Keys and values are bytes in etcd; surrogateescape keeps non-UTF-8 bytes round-trippable.
    return base64.b64decode(s or "").decode(errors="surrogateescape")


class EtcdctlCalls:
    """The etcdctl calls of EtcdClient: each one process, bounded by the call's budget."""

    endpoints: list[str]
    binaries: EtcdBinaries
    tls: ClientTLS | None
    timeout: float

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

    async def move_leader(self, member_id: int) -> None:
        """Hand etcd's leadership to voting member `member_id` (the endpoints must include the
        current leader's: etcdctl sends the request there)."""
        what = f"move-leader {member_id:x}"
        await self._ctl(["move-leader", f"{member_id:x}"], what, json_out=False)

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

    async def hash_kv(self, endpoint: str, revision: int) -> tuple[int, int]:
        """(hash, compact revision) of one member's keyspace history up to ``revision``
        (`endpoint hashkv --rev`): equal on every member, and on a restore of a snapshot taken at
        that revision. Fails once the member compacted past ``revision``."""
        data = await self._ctl(
            ["endpoint", "hashkv", f"--rev={revision}"],
            f"endpoint hashkv --rev={revision} {endpoint}",
            endpoints=[endpoint],
        )
        h = data[0]["HashKV"]
        return int(h.get("hash", 0)), int(h.get("compact_revision", 0))

    async def count_keys(self, endpoint: str, revision: int) -> int:
        """How many keys one member held at ``revision`` (the range's count; no key is read)."""
        data = await self._ctl(
            ["get", "--prefix", "--keys-only", "--limit=1", f"--rev={revision}", "--", ""],
            f"count keys at revision {revision} on {endpoint}",
            endpoints=[endpoint],
        )
        return int(data.get("count", 0))  # proto3 JSON omits a zero count

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
        await trio.to_thread.run_sync(publish, part, dest)

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
