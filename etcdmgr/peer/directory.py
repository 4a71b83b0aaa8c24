"""Who is out there: peers learned from discovery, from pings received and from gossip.

A peer is healthy while our last successful ping to it is younger than the peer timeout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import trio

from etcdmgr.model import PeerEndpoint
from etcdmgr.model.ids import PeerId

log = logging.getLogger(__name__)


@dataclass
class PeerRecord:
    peer_id: PeerId
    endpoints: tuple[PeerEndpoint, ...]
    last_ok: float | None = None  # trio clock of the last successful ping
    failures: int = 0


@dataclass
class PeerDirectory:
    me: PeerId
    my_endpoints: tuple[PeerEndpoint, ...]
    timeout: float
    records: dict[str, PeerRecord] = field(default_factory=dict)
    changed: trio.Event = field(default_factory=trio.Event)

    def _signal(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def learn(self, peer_id: PeerId, endpoints: tuple[PeerEndpoint, ...]) -> None:
        if peer_id == self.me or not endpoints or set(endpoints) & set(self.my_endpoints):
            return  # ourselves, or our own former id (a wiped data dir)
        rec = self.records.get(peer_id)
        if rec is None:
            now = trio.current_time()
            for old in list(self.records.values()):
                if set(old.endpoints) & set(endpoints) and not self._is_healthy(old, now):
                    log.info(
                        "peer %s at %s replaced by %s", old.peer_id, ", ".join(map(str, endpoints)), peer_id
                    )
                    del self.records[old.peer_id]
            self.records[peer_id] = PeerRecord(peer_id, endpoints)
            log.info("learned of peer %s at %s", peer_id, ", ".join(map(str, endpoints)))
            self._signal()
        elif rec.endpoints != endpoints:
            rec.endpoints = endpoints
            log.info("peer %s moved to %s", peer_id, ", ".join(map(str, endpoints)))

    def ping_ok(self, peer_id: str) -> None:
        rec = self.records.get(peer_id)
        if rec is None:
            return
        was_healthy = self._is_healthy(rec, trio.current_time())
        rec.last_ok = trio.current_time()
        rec.failures = 0
        if not was_healthy:
            log.info("peer %s is healthy", peer_id)
            self._signal()

    def ping_failed(self, peer_id: str, error: str) -> None:
        rec = self.records.get(peer_id)
        if rec is None:
            return
        rec.failures += 1
        if rec.failures == 1:
            log.info("ping to peer %s failed: %s", peer_id, error)

    def _is_healthy(self, rec: PeerRecord, now: float) -> bool:
        return rec.last_ok is not None and now - rec.last_ok <= self.timeout

    def healthy(self) -> list[PeerId]:
        """Healthy peer ids, this node included, sorted."""
        now = trio.current_time()
        return sorted([self.me, *(r.peer_id for r in self.records.values() if self._is_healthy(r, now))])

    def endpoints_of(self, peer_id: str) -> tuple[PeerEndpoint, ...]:
        if peer_id == self.me:
            return self.my_endpoints
        rec = self.records.get(peer_id)
        return rec.endpoints if rec else ()

    def known(self) -> dict[PeerId, tuple[PeerEndpoint, ...]]:
        out = {r.peer_id: r.endpoints for r in self.records.values()}
        out[self.me] = self.my_endpoints
        return out
