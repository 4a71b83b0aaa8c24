"""What the leader saw in one cycle: the input of the pure planner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from etcdmgr.model import ClusterSpec, PeerInfo
from etcdmgr.model.command import Command


@dataclass(frozen=True)
class Promotion:
    """How promoting a learner has gone: failing for how long, when to retry, and why."""

    failing_for: float = 0.0  # seconds since the first failed attempt; 0: none failed
    retry_in: float = 0.0  # seconds until the next attempt may start; 0: now
    error: str = ""  # why the last attempt failed


@dataclass(frozen=True)
class MemberView:
    """One etcd member, as `member list` and a health check showed it."""

    member_id: int
    name: str  # empty while added but not yet started
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    healthy: bool
    is_learner: bool = False
    unhealthy_for: float = 0.0  # seconds it has been unhealthy without a break
    promotion: Promotion = Promotion()  # a learner's failed promotions


@dataclass(frozen=True)
class BackupHealth:
    """The newest backup's age, and how this leader's recent backup attempts went."""

    age: timedelta | None = None  # of the newest backup in the store; None: there is none
    failures: int = 0  # attempts that failed in a row
    error: str = ""  # why the last one failed
    retry_in: float = 0.0  # seconds until the next attempt may start (backing off); 0: now


@dataclass(frozen=True)
class ClusterView:
    spec: ClusterSpec | None
    created: bool
    peers: dict[str, PeerInfo]  # peers that answered and accept this leader, this node included
    members: tuple[MemberView, ...] | None  # None: no member could be listed
    spec_problem: str | None = None
    members_problem: str | None = None
    commands: tuple[Command, ...] = ()
    backup_due: bool = False  # the backup interval has elapsed since the newest backup
    backups: BackupHealth = BackupHealth()
    backup_requests: tuple[str, ...] = ()  # `ctl backup-now` requests seen in the store
    replace_after: float = 60.0  # seconds before a member without a daemon is replaced
