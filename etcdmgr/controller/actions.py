"""What the planner can decide: at most one mutating step per cycle."""

from __future__ import annotations

from dataclasses import dataclass

from etcdmgr.model.command import Command
from etcdmgr.model.values import EtcdVersion


@dataclass(frozen=True)
class Wait:
    """Nothing to change now (converged, or blocked on something the reason names)."""


@dataclass(frozen=True)
class CreateCluster:
    peer_ids: tuple[str, ...]
    etcd_version: EtcdVersion


@dataclass(frozen=True)
class MarkCreated:
    """etcd already runs but the created marker is missing: record it, never create another cluster."""


@dataclass(frozen=True)
class LiftQuarantine:
    peer_ids: tuple[str, ...]


@dataclass(frozen=True)
class AddMember:
    peer_id: str
    learner: bool
    backup_first: bool = True  # take a backup before the change (none is fresh)


@dataclass(frozen=True)
class StartAddedMember:
    """A member was added to etcd but its node never started it: start it now."""

    peer_id: str


@dataclass(frozen=True)
class PromoteMember:
    member_id: int
    name: str


@dataclass(frozen=True)
class RemoveMember:
    member_id: int
    name: str
    stop_peer: str | None  # a peer still running this member's etcd, stopped after removal
    backup_first: bool = True


@dataclass(frozen=True)
class UpdatePeerURLs:
    """A member's node now serves other peer URLs (e.g. it moved to TLS): tell etcd."""

    member_id: int
    name: str
    peer_urls: tuple[str, ...]


@dataclass(frozen=True)
class StopOrphan:
    """A peer runs etcd for this cluster but is no member of it (removed while it was away)."""

    peer_id: str


@dataclass(frozen=True)
class UpgradeMember:
    """Restart one member on another etcd version over its data (an in-place version change)."""

    peer_id: str
    etcd_version: EtcdVersion
    backup_first: bool = True


@dataclass(frozen=True)
class RestartMember:
    """Restart one member's etcd as it is, so it reads CA bundles that changed (a CA rotation)."""

    peer_id: str


@dataclass(frozen=True)
class LogicalVersionChange:
    """Quarantine, back up, and queue a restore of that backup on the new version."""

    peer_ids: tuple[str, ...]
    etcd_version: EtcdVersion


@dataclass(frozen=True)
class TakeBackup:
    requests: tuple[str, ...] = ()  # the `ctl backup-now` requests it answers


@dataclass(frozen=True)
class RestoreBackup:
    command: Command
    peer_ids: tuple[str, ...]


Action = (
    Wait
    | CreateCluster
    | MarkCreated
    | LiftQuarantine
    | AddMember
    | StartAddedMember
    | PromoteMember
    | RemoveMember
    | StopOrphan
    | UpdatePeerURLs
    | TakeBackup
    | RestoreBackup
    | UpgradeMember
    | RestartMember
    | LogicalVersionChange
)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str

    @property
    def mutates(self) -> bool:
        return not isinstance(self.action, Wait)
