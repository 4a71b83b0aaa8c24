"""One leader, fenced by tokens.

The lowest healthy peer id that is fit to lead leads (peer/progress.py: a node whose control
loop makes no progress says it is not); when no healthy peer is fit, the lowest healthy id
leads all the same. While it leads it holds a random token and re-asserts it to every healthy
peer each cycle; a node follows the newest leader it accepted and refuses mutating calls that
carry another token. A restarted node simply accepts the token at the leader's next cycle, so
it never stalls the leader (the original's lost-token bug).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from etcdmgr.model.ids import LeaderToken, PeerId, new_leader_token

log = logging.getLogger(__name__)

ALL_FIT: Mapping[str, str] = MappingProxyType({})


def leader_of(healthy: Collection[str], unfit: Collection[str] = ()) -> str:
    """The lowest healthy id fit to lead; when none is (a fault they all share, such as a store
    that is down for every node), the lowest healthy id, so that some node still leads."""
    fit = [p for p in healthy if p not in unfit]
    return min(fit or healthy)


def refusal(
    me: str,
    my_healthy: Sequence[str],
    leader_id: str,
    view: Sequence[str],
    unfit: Mapping[str, str] = ALL_FIT,
) -> str | None:
    """Why this node refuses `leader_id` as its leader, or None to accept. `unfit`: the healthy
    peers (this node included) that should not lead, and why. Pure."""
    peers = {me, *my_healthy}
    if leader_id not in peers:
        # Only a peer we reach ourselves may lead us: a certificate alone is not enough.
        return f"leader {leader_id} is not a healthy peer here"
    expected = leader_of(peers, unfit)
    if expected != leader_id:
        if leader_id in unfit and expected not in unfit:
            return f"leader {leader_id} is not fit to lead: {unfit[leader_id]}"
        return f"peer {expected} is healthy and has a lower id than {leader_id}"
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
    heard: float | None = None  # trio clock of the last notification accepted

    def accept(self, leader_id: str, token: str, floor: int = 1, now: float | None = None) -> None:
        if (leader_id, token) != (self.leader_id, self.token):
            log.info("following leader %s (new token)", leader_id)
            self.floor = 1
        self.leader_id, self.token = leader_id, token
        self.floor = max(self.floor, floor)
        if now is not None:
            self.heard = now

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
class Silence:
    """A follower's watch on its leaders: has none asserted itself here for `limit` seconds?
    Said once when the silence begins and once when it ends. Pure."""

    limit: float
    since: float = 0.0  # silence counts from here at the earliest (this node's start, or its last term)
    reported: bool = False

    def check(self, heard: float | None, now: float) -> bool | None:
        """True: the silence begins (warn); False: it ended; None: nothing new."""
        last = self.since if heard is None else max(heard, self.since)
        silent = now - last > self.limit
        if silent == self.reported:
            return None
        self.reported = silent
        return silent


@dataclass
class Candidacy:
    """This node's own leadership term: a fresh token each time it becomes the leader of the
    healthy peers (leader_of), and none as soon as it is not."""

    me: PeerId
    term: Term | None = None

    def update(self, healthy: Sequence[str], unfit: Mapping[str, str] = ALL_FIT) -> Term | None:
        leader = leader_of(healthy, unfit)
        if leader == self.me:
            if self.term is None:
                self.term = Term(new_leader_token())
                if self.me in unfit:
                    log.warning(
                        "no healthy peer is fit to lead; taking leadership as the lowest id among %d "
                        "(this node: %s)",
                        len(healthy),
                        unfit[self.me],
                    )
                else:
                    log.info("lowest healthy peer id fit to lead among %d: taking leadership", len(healthy))
        elif self.term is not None:
            if self.me in unfit:
                why = unfit[self.me]
                log.warning(
                    "stepping down: this node is not fit to lead (%s); peer %s leads next", why, leader
                )
            else:
                log.info("peer %s has a lower id and is healthy: giving up leadership", leader)
            self.term = None
        return self.term
