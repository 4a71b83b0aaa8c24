"""Every peer call's arguments and answer, defined once for the caller and the handler.

``to_wire()`` gives the msgpack map and ``from_wire()`` parses one from the network: strictly,
raising InvalidData that names the call and the field (the handler answers it as bad-request).
Field names are those of the previous release, which sends and reads exactly these maps, so
daemons of both releases work side by side; fields added later are optional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from etcdmgr.model.cluster import EtcdNode, parse_nodes
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
    LeaderToken,
    PeerId,
    parse_backup_name,
    parse_cluster_token,
    parse_leader_token,
    parse_peer_id,
)
from etcdmgr.model.peer import PeerEndpoint
from etcdmgr.model.values import EtcdVersion, parse_etcd_version
from etcdmgr.peer import methods
from etcdmgr.peer.directory import MAX_ENDPOINTS, MAX_RECORDS

# Gossip is hearsay: at most as many known peers as the directory holds are read from one
# Ping, and entries that do not parse are dropped one by one (refusing the whole ping would let
# one bad id, repeated by an honest peer, make that peer look down).
MAX_KNOWN = MAX_RECORDS

Known = dict[PeerId, tuple[PeerEndpoint, ...]]


def parse_seq(value: object, field: str) -> int:
    return parse_int(value, field, low=1, high=2**63 - 1)


def _endpoints(value: object, field: str) -> tuple[PeerEndpoint, ...]:
    if not isinstance(value, list) or len(value) > MAX_ENDPOINTS:
        raise InvalidData(f"{field}: should be a list of at most {MAX_ENDPOINTS} endpoints")
    parse = nested(PeerEndpoint.from_json)
    return tuple(parse(e, f"{field}[{i}]") for i, e in enumerate(value))


def _known(value: object, field: str) -> Known:
    if not isinstance(value, dict):
        raise InvalidData(f"{field}: should be a map of peer id to endpoints")
    out: Known = {}
    for n, (raw_id, raw_endpoints) in enumerate(value.items()):
        if n == MAX_KNOWN:
            break
        try:
            out[parse_peer_id(raw_id, field)] = _endpoints(raw_endpoints, field)
        except InvalidData:
            continue
    return out


def _known_to_wire(known: Known) -> dict[str, Any]:
    return {pid: [e.to_json() for e in eps] for pid, eps in known.items()}


@dataclass(frozen=True, kw_only=True)
class PingArgs:
    """The caller's own endpoints and the peers it knows of."""

    endpoints: tuple[PeerEndpoint, ...]
    known: Known = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {"endpoints": [e.to_json() for e in self.endpoints], "known": _known_to_wire(self.known)}

    @classmethod
    def from_wire(cls, data: Any) -> PingArgs:
        d = as_dict(data, methods.PING)
        return cls(
            endpoints=optional(d, "endpoints", _endpoints, methods.PING) or (),
            known=optional(d, "known", _known, methods.PING) or {},
        )


@dataclass(frozen=True, kw_only=True)
class PingAnswer:
    """Who answered, the peers it verified, and why it should not lead (None: it may)."""

    peer_id: PeerId
    known: Known = field(default_factory=dict)
    unfit: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"peerId": self.peer_id, "known": _known_to_wire(self.known)}
        if self.unfit is not None:  # the first release's map while this node may lead
            wire["unfit"] = self.unfit
        return wire

    @classmethod
    def from_wire(cls, data: Any) -> PingAnswer:
        what = f"{methods.PING} answer"
        d = as_dict(data, what)
        return cls(
            peer_id=required(d, "peerId", parse_peer_id, what),
            known=optional(d, "known", _known, what) or {},
            unfit=optional(d, "unfit", parse_text, what),
        )


@dataclass(frozen=True)
class GetInfoArgs:
    """GetInfo takes nothing; its answer is a PeerInfo (etcdmgr.model.peer)."""

    def to_wire(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_wire(cls, data: Any) -> GetInfoArgs:
        as_dict(data, methods.GET_INFO)
        return cls()


@dataclass(frozen=True, kw_only=True)
class LeaderNotificationArgs:
    """The leader's id and token, and the healthy peers it sees."""

    leader_id: PeerId
    token: LeaderToken
    view: tuple[PeerId, ...]
    seq_floor: int = 1  # calls of this term numbered lower are refused (peer/election.py)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"leaderId": self.leader_id, "token": self.token, "view": list(self.view)}
        if self.seq_floor > 1:  # the first release's map, unless a call was given up
            wire["seqFloor"] = self.seq_floor
        return wire

    @classmethod
    def from_wire(cls, data: Any) -> LeaderNotificationArgs:
        what = methods.LEADER_NOTIFICATION
        d = as_dict(data, what)
        return cls(
            leader_id=required(d, "leaderId", parse_peer_id, what),
            token=required(d, "token", parse_leader_token, what),
            view=listed(d, "view", parse_peer_id, what),
            seq_floor=optional(d, "seqFloor", parse_seq, what) or 1,
        )


@dataclass(frozen=True, kw_only=True)
class LeaderNotificationAnswer:
    accepted: bool
    reason: str = ""  # why not, when refused

    def to_wire(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "reason": self.reason}

    @classmethod
    def from_wire(cls, data: Any) -> LeaderNotificationAnswer:
        what = f"{methods.LEADER_NOTIFICATION} answer"
        d = as_dict(data, what)
        return cls(
            accepted=required(d, "accepted", parse_bool, what),
            reason=optional(d, "reason", parse_text, what) or "",
        )


class JoinPhase(StrEnum):
    PREPARE = "PREPARE"
    CANCEL_PREPARE = "CANCEL_PREPARE"
    INITIAL_CLUSTER = "INITIAL_CLUSTER"
    JOIN_EXISTING = "JOIN_EXISTING"


def _phase(value: object, field: str) -> JoinPhase:
    if isinstance(value, str) and value in JoinPhase.__members__:
        return JoinPhase(value)
    raise InvalidData(f"{field}: unknown phase {repr(value)[:40]} (one of {', '.join(JoinPhase)})")


@dataclass(frozen=True, kw_only=True)
class JoinClusterArgs:
    """One phase of making this node a member of cluster ``cluster_token`` of ``nodes``."""

    phase: JoinPhase
    cluster_token: ClusterToken
    nodes: tuple[EtcdNode, ...]
    etcd_version: EtcdVersion
    quarantined: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "clusterToken": self.cluster_token,
            "nodes": [n.to_wire() for n in self.nodes],
            "etcdVersion": self.etcd_version,
            "quarantined": self.quarantined,
        }

    @classmethod
    def from_wire(cls, data: Any) -> JoinClusterArgs:
        what = methods.JOIN_CLUSTER
        d = as_dict(data, what)
        return cls(
            phase=required(d, "phase", _phase, what),
            cluster_token=required(d, "clusterToken", parse_cluster_token, what),
            nodes=parse_nodes(d, "nodes", what),
            etcd_version=required(d, "etcdVersion", parse_etcd_version, what),
            quarantined=optional(d, "quarantined", parse_bool, what) or False,
        )


@dataclass(frozen=True, kw_only=True)
class ReconfigureArgs:
    """Restart etcd with what is given changed (None: keep). With nothing changed etcd is
    restarted only when `restart` is set (to read CA bundles that changed; a node of the previous
    release ignores it, but is never asked: it does not report etcdTrustOutdated)."""

    quarantined: bool | None = None
    etcd_version: EtcdVersion | None = None
    restart: bool = False

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"quarantined": self.quarantined, "etcdVersion": self.etcd_version}
        if self.restart:
            out["restart"] = True
        return out

    @classmethod
    def from_wire(cls, data: Any) -> ReconfigureArgs:
        what = methods.RECONFIGURE
        d = as_dict(data, what)
        return cls(
            quarantined=optional(d, "quarantined", parse_bool, what),
            etcd_version=optional(d, "etcdVersion", parse_etcd_version, what),
            restart=optional(d, "restart", parse_bool, what) or False,
        )


@dataclass(frozen=True, kw_only=True)
class DoRestoreArgs:
    """Become a quarantined member of new cluster ``cluster_token`` holding backup ``backup``."""

    backup: BackupName
    cluster_token: ClusterToken
    nodes: tuple[EtcdNode, ...]
    etcd_version: EtcdVersion

    def to_wire(self) -> dict[str, Any]:
        return {
            "backup": self.backup,
            "clusterToken": self.cluster_token,
            "nodes": [n.to_wire() for n in self.nodes],
            "etcdVersion": self.etcd_version,
        }

    @classmethod
    def from_wire(cls, data: Any) -> DoRestoreArgs:
        what = methods.DO_RESTORE
        d = as_dict(data, what)
        return cls(
            backup=required(d, "backup", parse_backup_name, what),
            cluster_token=required(d, "clusterToken", parse_cluster_token, what),
            nodes=parse_nodes(d, "nodes", what),
            etcd_version=required(d, "etcdVersion", parse_etcd_version, what),
        )


@dataclass(frozen=True, kw_only=True)
class DoDrillArgs:
    """Restore backup ``backup`` into a throw-away etcd, check it, and record how it went beside it."""

    backup: BackupName

    def to_wire(self) -> dict[str, Any]:
        return {"backup": self.backup}

    @classmethod
    def from_wire(cls, data: Any) -> DoDrillArgs:
        d = as_dict(data, methods.DO_DRILL)
        return cls(backup=required(d, "backup", parse_backup_name, methods.DO_DRILL))


@dataclass(frozen=True, kw_only=True)
class DoDrillAnswer:
    """Whether the drill started (it runs on after the answer), and why not."""

    started: bool
    reason: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {"started": self.started, "reason": self.reason}

    @classmethod
    def from_wire(cls, data: Any) -> DoDrillAnswer:
        what = f"{methods.DO_DRILL} answer"
        d = as_dict(data, what)
        return cls(
            started=required(d, "started", parse_bool, what),
            reason=optional(d, "reason", parse_text, what) or "",
        )


@dataclass(frozen=True)
class StopEtcdArgs:
    """StopEtcd takes nothing."""

    def to_wire(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_wire(cls, data: Any) -> StopEtcdArgs:
        as_dict(data, methods.STOP_ETCD)
        return cls()


@dataclass(frozen=True)
class Done:
    """The answer of the four mutating calls: nothing but success."""

    def to_wire(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_wire(cls, data: Any) -> Done:
        as_dict(data, "answer")
        return cls()
