"""Who is out there: peers learned from discovery, from pings received and from gossip.

Trust follows the source. A third party's word (gossip) is a hint to ping, nothing more; a
peer's own word (its discovery record, or its ping to us) says where to reach it; only our own
ping, answered under the expected id (with TLS: by a certificate naming it), verifies a record.
Only verified records can be healthy (and so lead), are passed on in gossip and written to the
hosts file, and while a verified peer answers, nothing moves it elsewhere.

A peer is healthy while our last successful ping to it is younger than the peer timeout, or
until a connection to it closes and a ping right after fails: a process that died closes its
connections at once (its host is up), while a silent host is noticed only by the timeout. Its
ping answer also says whether it is fit to lead (peer/progress.py): a healthy peer whose control
loop is stuck answers pings all the same, and must not be chosen to lead.

Seeds are addresses without an id (--peers, --static-config, a seeds folder). Gossip pings each
seed that no healthy peer answers at, the id unknown; the id the answer names (with TLS: its
certificate too) is then the peer's own word and our own ping at once, so it enters verified.
A seed that answered with our own id is our own address under another name, and left alone.

The directory is bounded whatever peers send: at most MAX_RECORDS records (a hint never
displaces anything; a peer's own word displaces the oldest hint), records without first-hand
word for PRUNE_AFTER peer timeouts are dropped, and each learn costs O(1).
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from enum import IntEnum

import trio

from etcdmgr.model import PeerEndpoint
from etcdmgr.model.ids import PeerId
from etcdmgr.peer.progress import Progress

log = logging.getLogger(__name__)

MAX_RECORDS = 256
MAX_ENDPOINTS = 8  # per peer; a node has one or two addresses
# Discovery lists a dead peer at every poll, so it stays known as long as its record is there;
# this only forgets what nobody first-hand mentions any more (default: 2 minutes).
PRUNE_AFTER = 30
HINT_RETRY_MAX = 30.0  # seconds; a hint or seed that never answered is pinged ever less often
MAX_SEEDS = MAX_RECORDS


class Source(IntEnum):
    """Where an id and its endpoints were heard, least trusted first."""

    GOSSIP = 0  # another peer's list
    DISCOVERY = 1  # its own record in the discovery store
    PEER = 2  # its own ping to us


@dataclass
class PeerRecord:
    peer_id: PeerId
    endpoints: tuple[PeerEndpoint, ...]
    source: Source
    heard: float  # trio clock of the last first-hand word: discovery, its ping, our ping answered
    verified: bool = False  # our own ping reached this id at these endpoints
    last_ok: float | None = None  # trio clock of the last successful ping
    failures: int = 0
    next_ping: float = 0.0
    unfit: str | None = None  # why it said, in its last ping answer, it should not lead
    # trio clock of a close of its connection: a ping sent since then decides its health at once
    recheck: float | None = None


@dataclass
class _Seed:
    failures: int = 0
    next_ping: float = 0.0
    is_me: bool = False  # it answered with our own id


def _backoff(failures: int) -> float:
    return min(2.0 ** (failures - 1), HINT_RETRY_MAX)


@dataclass
class PeerDirectory:
    me: PeerId
    my_endpoints: tuple[PeerEndpoint, ...]
    timeout: float
    records: dict[PeerId, PeerRecord] = field(default_factory=dict)
    changed: trio.Event = field(default_factory=trio.Event)
    recheck_due: trio.Event = field(default_factory=trio.Event)  # set: ping without waiting a round
    progress: Progress = field(default_factory=Progress.never_stalls)  # this node's own loop
    # Unverified ids, oldest first: the ones a peer's own word may displace when full.
    _hints: OrderedDict[PeerId, None] = field(default_factory=OrderedDict, init=False, repr=False)
    _at: defaultdict[PeerEndpoint, set[PeerId]] = field(
        default_factory=lambda: defaultdict(set), init=False, repr=False
    )
    _full_reported: bool = field(default=False, init=False, repr=False)
    _seeds: dict[PeerEndpoint, _Seed] = field(default_factory=dict, init=False, repr=False)

    def _signal(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    # --- learning ---------------------------------------------------------------------------------

    def learn(self, peer_id: PeerId, endpoints: tuple[PeerEndpoint, ...], source: Source) -> None:
        if peer_id == self.me:
            return
        rec = self.records.get(peer_id)
        if rec is None:
            self._add(peer_id, endpoints, source)
            return
        if source is Source.GOSSIP:
            return  # hearsay never changes a record
        now = trio.current_time()
        rec.heard = now
        if not rec.verified:
            rec.next_ping = now  # it spoke for itself: worth a ping at the next round
        if rec.endpoints == endpoints or (rec.verified and self._is_healthy(rec, now)):
            # While a verified peer answers where we verified it, only it could have moved,
            # and it would not answer there: keep pinging the endpoints that work.
            rec.source = max(rec.source, source)
            return
        if source < rec.source:
            return  # the peer itself said otherwise
        usable = _usable(endpoints, self.my_endpoints)
        if not usable or usable == rec.endpoints:
            return
        self._move(rec, usable, source)

    def _add(self, peer_id: PeerId, endpoints: tuple[PeerEndpoint, ...], source: Source) -> None:
        usable = _usable(endpoints, self.my_endpoints)
        if not usable:
            return  # nowhere to reach it, or at our own address (our own former id)
        if len(self.records) >= MAX_RECORDS and not self._make_room(source):
            return
        rec = PeerRecord(peer_id, usable, source, heard=trio.current_time())
        self.records[peer_id] = rec
        self._hints[peer_id] = None
        for e in usable:
            self._at[e].add(peer_id)
        # Hints come by the hundred from one message: only first-hand news is worth a line.
        log.log(
            logging.DEBUG if source is Source.GOSSIP else logging.INFO,
            "learned of peer %s at %s (%s)",
            peer_id,
            _fmt(usable),
            source.name.lower(),
        )

    def _make_room(self, source: Source) -> bool:
        if source is not Source.GOSSIP and self._hints:
            oldest = next(iter(self._hints))
            self._drop(self.records[oldest], "evicted for a peer that spoke for itself")
            return True
        if not self._full_reported:
            log.warning(
                "peer directory full (%d records): ignoring new peers until some are verified or pruned",
                MAX_RECORDS,
            )
            self._full_reported = True
        return False

    def _move(self, rec: PeerRecord, endpoints: tuple[PeerEndpoint, ...], source: Source) -> None:
        was_verified = rec.verified
        self._unindex(rec)
        rec.endpoints, rec.source = endpoints, source
        rec.verified, rec.last_ok, rec.failures, rec.next_ping = False, None, 0, 0.0
        self._hints[rec.peer_id] = None
        for e in endpoints:
            self._at[e].add(rec.peer_id)
        log.info("peer %s moved to %s (%s)", rec.peer_id, _fmt(endpoints), source.name.lower())
        if was_verified:
            self._signal()

    def _unindex(self, rec: PeerRecord) -> None:
        for e in rec.endpoints:
            ids = self._at.get(e)
            if ids is not None:
                ids.discard(rec.peer_id)
                if not ids:
                    del self._at[e]

    def _drop(self, rec: PeerRecord, why: str) -> None:
        del self.records[rec.peer_id]
        self._hints.pop(rec.peer_id, None)
        self._unindex(rec)
        self._full_reported = False
        log.log(logging.INFO if rec.verified else logging.DEBUG, "forgot peer %s: %s", rec.peer_id, why)
        if rec.verified:
            self._signal()

    def prune(self) -> None:
        """Forget records nobody first-hand has mentioned for PRUNE_AFTER peer timeouts."""
        limit = trio.current_time() - PRUNE_AFTER * self.timeout
        for rec in [r for r in self.records.values() if r.heard < limit]:
            self._drop(rec, f"not heard of for {PRUNE_AFTER * self.timeout:g}s")

    # --- pinging ----------------------------------------------------------------------------------

    def due(self) -> list[PeerId]:
        """Ids to ping this round: every verified peer, and the hints whose retry time came."""
        now = trio.current_time()
        return [r.peer_id for r in self.records.values() if r.verified or r.next_ping <= now]

    def ping_ok(
        self,
        peer_id: PeerId,
        endpoints: tuple[PeerEndpoint, ...],
        unfit: str | None = None,
        sent: float | None = None,
    ) -> None:
        """Our ping to peer_id at `endpoints` (sent at `sent`, trio clock) was answered under
        that id (saying why it should not lead, if it should not)."""
        rec = self.records.get(peer_id)
        if rec is None or rec.endpoints != endpoints:
            return  # it moved while the ping ran: the new endpoints get their own ping
        now = trio.current_time()
        if (unfit is None) != (rec.unfit is None):
            if unfit is None:
                log.info("peer %s is fit to lead again", peer_id)
            else:
                log.warning("peer %s is not fit to lead: %s", peer_id, unfit)
            self._signal()
        rec.unfit = unfit
        was_healthy = self._is_healthy(rec, now)
        rec.last_ok = rec.heard = now
        rec.failures = 0
        if rec.recheck is not None and (sent is None or sent >= rec.recheck):
            rec.recheck = None
        if not rec.verified:
            rec.verified = True
            del self._hints[peer_id]
            # A host that came back under a new id (wiped data dir) replaces its old self.
            for e in rec.endpoints:
                for other_id in list(self._at.get(e, ())):
                    other = self.records[other_id]
                    if other is not rec and not self._is_healthy(other, now):
                        self._drop(other, f"{peer_id} answers at {e}")
        if not was_healthy:
            log.info("peer %s is healthy", peer_id)
            self._signal()

    def connection_closed(self, endpoint: PeerEndpoint) -> None:
        """The other side closed (or broke) our connection to `endpoint`: ping the healthy peers
        there again now, rather than letting their pings time out."""
        now = trio.current_time()
        for peer_id in sorted(self._at.get(endpoint, ())):
            rec = self.records[peer_id]
            if self._is_healthy(rec, now) and rec.recheck is None:
                rec.recheck = now
                log.info("connection to peer %s at %s closed: pinging it again now", peer_id, endpoint)
                self.recheck_due.set()

    def ping_failed(self, peer_id: PeerId, error: str, sent: float | None = None) -> None:
        """Our ping to peer_id (sent at `sent`, trio clock) failed."""
        rec = self.records.get(peer_id)
        if rec is None:
            return
        # Only a ping sent after the close counts: one in flight then fails because of it.
        if rec.recheck is not None and sent is not None and sent >= rec.recheck:
            rec.recheck = None
            if self._is_healthy(rec, trio.current_time()):
                # Its connection closed and it does not answer a new one: its process is gone.
                rec.last_ok = None
                log.info(
                    "peer %s closed its connection and does not answer: unhealthy now (%s)", peer_id, error
                )
                self._signal()
        rec.failures += 1
        if not rec.verified:
            rec.next_ping = trio.current_time() + _backoff(rec.failures)
        if rec.failures == 1:
            log.log(
                logging.INFO if rec.verified else logging.DEBUG,
                "ping to peer %s failed: %s",
                peer_id,
                error,
            )

    # --- seeds: addresses without an id ----------------------------------------------------------

    def set_seeds(self, endpoints: list[PeerEndpoint]) -> None:
        """The seed addresses now named (those already known keep their retry state)."""
        wanted = [e for e in dict.fromkeys(endpoints) if _usable((e,), self.my_endpoints)][:MAX_SEEDS]
        self._seeds = {e: self._seeds.get(e) or _Seed() for e in wanted}

    def due_seeds(self) -> list[PeerEndpoint]:
        """Seeds to ping this round: no healthy peer answers there and their retry time came."""
        now = trio.current_time()
        return [
            e
            for e, seed in self._seeds.items()
            if not seed.is_me
            and seed.next_ping <= now
            and not any(self._is_healthy(self.records[pid], now) for pid in self._at.get(e, ()))
        ]

    def seed_answered(self, endpoint: PeerEndpoint, peer_id: PeerId) -> None:
        """Our ping to seed `endpoint` was answered by `peer_id` (with TLS, its certificate names it)."""
        seed = self._seeds.get(endpoint)
        if seed is not None:
            seed.failures, seed.next_ping = 0, 0.0
            if peer_id == self.me and not seed.is_me:
                seed.is_me = True
                log.info("seed %s is this node itself", endpoint)
        self.learn(peer_id, (endpoint,), Source.PEER)
        self.ping_ok(peer_id, (endpoint,))

    def seed_failed(self, endpoint: PeerEndpoint, error: str) -> None:
        seed = self._seeds.get(endpoint)
        if seed is None:
            return
        seed.failures += 1
        seed.next_ping = trio.current_time() + _backoff(seed.failures)
        if seed.failures == 1:
            log.info("seed %s: no usable answer (yet): %s", endpoint, error)

    # --- what others read -------------------------------------------------------------------------

    def _is_healthy(self, rec: PeerRecord, now: float) -> bool:
        return rec.verified and rec.last_ok is not None and now - rec.last_ok <= self.timeout

    def healthy(self) -> list[PeerId]:
        """Healthy peer ids, this node included, sorted."""
        now = trio.current_time()
        return sorted([self.me, *(r.peer_id for r in self.records.values() if self._is_healthy(r, now))])

    def unfit(self) -> dict[str, str]:
        """Healthy peers that should not lead, this node included, and why."""
        now = trio.current_time()
        out: dict[str, str] = {
            r.peer_id: r.unfit
            for r in self.records.values()
            if r.unfit is not None and self._is_healthy(r, now)
        }
        if (mine := self.progress.unfit(now)) is not None:
            out[self.me] = mine
        return out

    def endpoints_of(self, peer_id: str) -> tuple[PeerEndpoint, ...]:
        if peer_id == self.me:
            return self.my_endpoints
        rec = self.records.get(PeerId(peer_id))
        return rec.endpoints if rec else ()

    def verified(self) -> dict[PeerId, tuple[PeerEndpoint, ...]]:
        """This node and the peers it verified itself: what it tells others and names in hosts."""
        out = {pid: r.endpoints for pid, r in self.records.items() if r.verified}
        out[self.me] = self.my_endpoints
        return out


def _usable(endpoints: tuple[PeerEndpoint, ...], mine: tuple[PeerEndpoint, ...]) -> tuple[PeerEndpoint, ...]:
    """The endpoints worth pinging: IP literals with a port; none if one of them is ours."""
    out = tuple(e for e in endpoints[:MAX_ENDPOINTS] if _is_ip(e.ip) and 0 < e.port < 65536)
    return () if set(out) & set(mine) else out


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _fmt(endpoints: tuple[PeerEndpoint, ...]) -> str:
    return ", ".join(map(str, endpoints))
