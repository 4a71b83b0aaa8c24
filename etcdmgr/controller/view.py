"""What the leader saw in one cycle: the input of the pure planner."""

from __future__ import annotations

from dataclasses import dataclass

from etcdmgr.model import ClusterSpec, PeerInfo
from etcdmgr.model.command import Command


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


@dataclass(frozen=True)
class ClusterView:
    spec: ClusterSpec | None
    created: bool
    peers: dict[str, PeerInfo]  # peers that answered and accept this leader, this node included
    members: tuple[MemberView, ...] | None  # None: no member could be listed
    spec_problem: str | None = None
    members_problem: str | None = None
    commands: tuple[Command, ...] = ()
    backup_due: bool = False
    backup_requests: tuple[str, ...] = ()  # `ctl backup-now` requests seen in the store
    replace_after: float = 60.0  # seconds before a member without a daemon is replaced
