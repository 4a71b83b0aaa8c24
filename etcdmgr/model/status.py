"""The cluster status the leader writes into the store (`control/etcdmgr-status.json`), so that
`ctl status` can show what the cluster is doing from the store alone.

A file of our own: the original lists only `_command.json` files under control/ and never
reads it. Times are unix seconds, never ages, so an unchanged cluster gives the same document
apart from ``time`` (an object store is then written only once a minute).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from etcdmgr.model.checks import DrillRecord, decode, encode
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.errors import InvalidData
from etcdmgr.model.fields import (
    as_dict,
    listed,
    nested,
    optional,
    parse_bool,
    parse_int,
    parse_text,
    required,
)
from etcdmgr.model.ids import (
    BackupName,
    ClusterToken,
    PeerId,
    parse_backup_name,
    parse_cluster_token,
    parse_peer_id,
)
from etcdmgr.model.values import EtcdVersion, parse_etcd_version, parse_seconds, parse_unix_seconds

FORMAT = 1  # the document's format; a reader refuses a newer one it cannot read
# A leader carrying an action out (a restore, a backup of a large database) writes again only
# when it is done: its status is stale only after this long.
ACTION_GRACE = 900.0
MEMBER_KINDS = ("voting", "learner", "")


def _kind(value: object, field: str) -> str:
    if value not in MEMBER_KINDS:
        raise InvalidData(f"{field}: {str(value)[:20]!r} is not one of voting, learner or empty")
    return str(value)


def _size(value: object, field: str) -> int:
    return parse_int(value, field, low=0, high=2**63 - 1)


@dataclass(frozen=True)
class PeerStatus:
    """One node (or an etcd member with no daemon behind it) as the leader saw it."""

    peer_id: PeerId
    address: str = ""  # its peer API, ip:port; "" when unknown
    daemon: bool = False  # its daemon answered and follows this leader
    member: str = ""  # "voting", "learner" or "" (not a member)
    member_healthy: bool | None = None  # None: not a member
    version: EtcdVersion | None = None  # the etcd it runs
    quarantined: bool = False
    cluster_token: ClusterToken | None = None
    problem: str = ""  # e.g. it cannot read its state file

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.peer_id,
            "address": self.address,
            "daemon": self.daemon,
            "member": self.member,
            "quarantined": self.quarantined,
        }
        if self.member_healthy is not None:
            doc["memberHealthy"] = self.member_healthy
        if self.version is not None:
            doc["version"] = self.version
        if self.cluster_token is not None:
            doc["clusterToken"] = self.cluster_token
        if self.problem:
            doc["problem"] = self.problem
        return doc

    @classmethod
    def from_json(cls, data: Any) -> PeerStatus:
        what = "peer status"
        d = as_dict(data, what)
        return cls(
            peer_id=required(d, "id", parse_peer_id, what),
            address=optional(d, "address", parse_text, what) or "",
            daemon=optional(d, "daemon", parse_bool, what) or False,
            member=optional(d, "member", _kind, what) or "",
            member_healthy=optional(d, "memberHealthy", parse_bool, what),
            version=optional(d, "version", parse_etcd_version, what),
            quarantined=optional(d, "quarantined", parse_bool, what) or False,
            cluster_token=optional(d, "clusterToken", parse_cluster_token, what),
            problem=optional(d, "problem", parse_text, what) or "",
        )

    @property
    def serving(self) -> bool:
        """A healthy voting member that serves clients."""
        return self.member == "voting" and bool(self.member_healthy) and not self.quarantined


@dataclass(frozen=True)
class BackupStatus:
    """The newest backup in the store."""

    name: BackupName
    time: int  # unix seconds it was taken
    size: int | None = None  # bytes of its files
    etcd_version: EtcdVersion | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "time": self.time}
        if self.size is not None:
            doc["size"] = self.size
        if self.etcd_version is not None:
            doc["etcdVersion"] = self.etcd_version
        return doc

    @classmethod
    def from_json(cls, data: Any) -> BackupStatus:
        what = "backup status"
        d = as_dict(data, what)
        return cls(
            name=required(d, "name", parse_backup_name, what),
            time=required(d, "time", parse_unix_seconds, what),
            size=optional(d, "size", _size, what),
            etcd_version=optional(d, "etcdVersion", parse_etcd_version, what),
        )


@dataclass(frozen=True)
class Outcome:
    """How an action the leader carried out ended."""

    action: str
    time: int  # unix seconds it ended
    error: str = ""  # "" when it succeeded

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"action": self.action, "time": self.time}
        if self.error:
            doc["error"] = self.error
        return doc

    @classmethod
    def from_json(cls, data: Any) -> Outcome:
        what = "outcome"
        d = as_dict(data, what)
        return cls(
            action=required(d, "action", parse_text, what),
            time=required(d, "time", parse_unix_seconds, what),
            error=optional(d, "error", parse_text, what) or "",
        )


@dataclass(frozen=True)
class DrillStatus:
    """The last restore drill the leader knows of: which backup, and its record (None while it runs)."""

    backup: BackupName
    record: DrillRecord | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"backup": self.backup}
        if self.record is not None:
            doc["record"] = self.record.to_json()
        return doc

    @classmethod
    def from_json(cls, data: Any) -> DrillStatus:
        what = "drill status"
        d = as_dict(data, what)
        return cls(
            backup=required(d, "backup", parse_backup_name, what),
            record=optional(d, "record", nested(DrillRecord.from_json), what),
        )


def _certificates(value: object, field: str) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > 64:
        raise InvalidData(f"{field}: should be a map of at most 64 certificate names to times")
    return {parse_text(k, field): parse_unix_seconds(v, f"{field}[{k!r}]") for k, v in value.items()}


@dataclass(frozen=True)
class ClusterStatus:
    time: int  # unix seconds, by the leader's clock
    leader: PeerId
    stale_after: float  # seconds; older than this, no leader is writing it
    spec: ClusterSpec | None
    action: str  # the last decision's action (Wait when none)
    reason: str
    acting: bool = False  # written as the action started: the leader is carrying it out
    cluster_token: ClusterToken | None = None  # the cluster the members serve
    peers: tuple[PeerStatus, ...] = ()
    problems: tuple[str, ...] = ()  # e.g. no member could be listed, and why
    last_action: Outcome | None = None  # the last action carried out, done or failed
    backup: BackupStatus | None = None
    backup_failure: Outcome | None = None  # the last backup attempt, when it failed
    drill: DrillStatus | None = None
    certificates: dict[str, int] = field(default_factory=dict)  # name -> not-after, unix seconds

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "time": self.time,
            "leader": self.leader,
            "staleAfterSeconds": self.stale_after,
            "spec": self.spec.to_json() if self.spec else None,
            "decision": {"action": self.action, "reason": self.reason, "acting": self.acting},
            "peers": [p.to_json() for p in self.peers],
            "problems": list(self.problems),
            "certificates": dict(sorted(self.certificates.items())),
        }
        optional_parts = (
            ("clusterToken", self.cluster_token),
            ("lastAction", self.last_action and self.last_action.to_json()),
            ("backup", self.backup and self.backup.to_json()),
            ("backupFailure", self.backup_failure and self.backup_failure.to_json()),
            ("drill", self.drill and self.drill.to_json()),
        )
        doc |= {k: v for k, v in optional_parts if v is not None}
        return doc

    @classmethod
    def from_json(cls, data: Any) -> ClusterStatus:
        what = "cluster status"
        d = as_dict(data, what)
        fmt = required(d, "format", lambda v, f: parse_int(v, f, low=1, high=1_000_000), what)
        if fmt > FORMAT:
            raise InvalidData(f"{what}: format {fmt} is newer than this program reads ({FORMAT}); upgrade it")
        decision = required(d, "decision", lambda v, f: as_dict(v, f), what)
        return cls(
            time=required(d, "time", parse_unix_seconds, what),
            leader=required(d, "leader", parse_peer_id, what),
            stale_after=required(d, "staleAfterSeconds", parse_seconds, what),
            spec=optional(d, "spec", nested(ClusterSpec.from_json), what),
            action=required(decision, "action", parse_text, f"{what}: decision"),
            reason=required(decision, "reason", parse_text, f"{what}: decision"),
            acting=optional(decision, "acting", parse_bool, f"{what}: decision") or False,
            cluster_token=optional(d, "clusterToken", parse_cluster_token, what),
            peers=listed(d, "peers", nested(PeerStatus.from_json), what),
            problems=listed(d, "problems", parse_text, what),
            last_action=optional(d, "lastAction", nested(Outcome.from_json), what),
            backup=optional(d, "backup", nested(BackupStatus.from_json), what),
            backup_failure=optional(d, "backupFailure", nested(Outcome.from_json), what),
            drill=optional(d, "drill", nested(DrillStatus.from_json), what),
            certificates=optional(d, "certificates", _certificates, what) or {},
        )

    def to_bytes(self) -> bytes:
        return encode(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> ClusterStatus:
        return cls.from_json(decode(data, "cluster status"))

    def stale_limit(self) -> float:
        """Seconds after ``time`` from which no leader is writing this status."""
        return max(self.stale_after, ACTION_GRACE) if self.acting else self.stale_after

    def content(self) -> bytes:
        """The document without its time: equal for an unchanged cluster."""
        return replace(self, time=0).to_bytes()
