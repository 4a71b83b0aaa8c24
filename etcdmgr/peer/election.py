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
class Term:
    """One leadership term, as its leader holds it: the token and the mutating calls' numbers.

    Every mutating call takes the next number. A call that times out gives its number up: the
    floor moves past it and travels with each leader notification, so the node refuses that
    call if it arrives late (after a partition heals). No clocks: hosts' clocks differ.
    """

    token: LeaderToken
    next_seq: int = 1
    floor: int = 1

    def take(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def give_up(self, seq: int) -> None:
        self.floor = max(self.floor, seq + 1)


@dataclass
class Follower:
    """Which leader this node accepted, and the lowest sequence number it still accepts from it."""

    leader_id: str | None = None
    token: str | None = None
    floor: int = 1

    def accept(self, leader_id: str, token: str, floor: int = 1) -> None:
        if (leader_id, token) != (self.leader_id, self.token):
            log.info("following leader %s (new token)", leader_id)
            self.floor = 1
        self.leader_id, self.token = leader_id, token
        self.floor = max(self.floor, floor)

    def admit(self, sender: str, token: str | None, seq: int | None) -> str | None:
        """Why a mutating call is refused, or None: then its number is used up."""
        if self.token is None:
            return "no leader accepted yet"
        if token != self.token or sender != self.leader_id:
            return f"stale leadership token (following {self.leader_id})"
        if seq is None:
            return (
                f"leader {sender} runs an earlier etcdmgr release (no sequence numbers): "
                "changes wait until it is upgraded"
            )
        if seq < self.floor:
            return f"call {seq} of this term comes late or again (calls from {self.floor} on are accepted)"
        self.floor = seq + 1
        return None


@dataclass
class Candidacy:
    """This node's own leadership term: a fresh token each time it becomes the lowest healthy id."""

    me: PeerId
    term: Term | None = None

    def update(self, healthy: Sequence[str]) -> Term | None:
        if leader_of(healthy) == self.me:
            if self.term is None:
                self.term = Term(new_leader_token())
                log.info("lowest healthy peer id among %d: taking leadership", len(healthy))
        elif self.term is not None:
            log.info("peer %s has a lower id and is healthy: giving up leadership", leader_of(healthy))
            self.term = None
        return self.term
