"""One leader, fenced by tokens.

The lowest healthy peer id leads. While it leads it holds a random token and re-asserts it to
every healthy peer each cycle; a node follows the newest leader it accepted and refuses
mutating calls that carry another token. A restarted node simply accepts the token at the
leader's next cycle, so it never stalls the leader (the original's lost-token bug).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from etcdmgr.model.ids import LeaderToken, PeerId, new_leader_token

log = logging.getLogger(__name__)


def leader_of(healthy: Sequence[str]) -> str:
    return min(healthy)


def refusal(me: str, my_healthy: Sequence[str], leader_id: str, view: Sequence[str]) -> str | None:
    """Why this node refuses `leader_id` as its leader, or None to accept. Pure."""
    if leader_id not in {me, *my_healthy}:
        # Only a peer we reach ourselves may lead us: a certificate alone is not enough.
        return f"leader {leader_id} is not a healthy peer here"
    lower = sorted(p for p in {me, *my_healthy} if p < leader_id)
    if lower:
        return f"peer {lower[0]} is healthy and has a lower id than {leader_id}"
    missing = sorted(set(my_healthy) - set(view) - {leader_id})
    if missing:
        return f"leader {leader_id} does not see healthy peers {', '.join(missing)}"
    return None


@dataclass
class Follower:
    """Which leader this node accepted; checks the token on mutating calls."""

    leader_id: str | None = None
    token: str | None = None

    def accept(self, leader_id: str, token: str) -> None:
        if (leader_id, token) != (self.leader_id, self.token):
            log.info("following leader %s (new token)", leader_id)
        self.leader_id, self.token = leader_id, token

    def token_problem(self, token: str | None) -> str | None:
        if self.token is None:
            return "no leader accepted yet"
        if token != self.token:
            return f"stale leadership token (following {self.leader_id})"
        return None


@dataclass
class Candidacy:
    """This node's own leadership term: a fresh token each time it becomes the lowest healthy id."""

    me: PeerId
    token: LeaderToken | None = None

    def update(self, healthy: Sequence[str]) -> LeaderToken | None:
        if leader_of(healthy) == self.me:
            if self.token is None:
                self.token = new_leader_token()
                log.info("lowest healthy peer id among %d: taking leadership", len(healthy))
        elif self.token is not None:
            log.info("peer %s has a lower id and is healthy: giving up leadership", leader_of(healthy))
            self.token = None
        return self.token
