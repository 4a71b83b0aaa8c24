"""Gather one ClusterView: the leader's acked peers, their GetInfo, the store, etcd membership."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import trio

from etcdmgr.controller.backoff import BackupAttempts, Promotions
from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model import EtcdmgrError, InvalidData, PeerInfo
from etcdmgr.model.ids import PeerId
from etcdmgr.model.tls import ClientTLS
from etcdmgr.node.launch import client_urls
from etcdmgr.ops import metrics
from etcdmgr.peer.calls import LeaderNotificationArgs
from etcdmgr.peer.election import Term
from etcdmgr.peer.node_api import NodeApi
from etcdmgr.store import BackupStore
from etcdmgr.store.retention import newest_backup_age
from etcdmgr.util import clock

log = logging.getLogger(__name__)


async def backup_age(store: BackupStore, note: Callable[[str], None] = log.warning) -> timedelta | None:
    """Age of the newest backup in the store (the store is the truth, not a timer in memory).
    Backups named in the future are left out, so one bad clock cannot stop all backups, and
    reported through ``note``."""
    age, future = newest_backup_age(await store.list_backups(), clock.now())
    if future:
        note(
            f"ignoring {len(future)} backup(s) named in the future ({', '.join(future[:3])}"
            f"{', ...' if len(future) > 3 else ''}) when deciding whether a backup is due: "
            "a leader's clock was ahead when it took them"
        )
    return age


def managed_token(infos: dict[str, PeerInfo]) -> str | None:
    """The cluster token that most peers running etcd serve (ties: the lowest, so that every
    leader picks the same one); None when no peer runs etcd."""
    counts = Counter(
        info.etcd_state.cluster.cluster_token
        for info in infos.values()
        if info.etcd_state is not None and info.etcd_running
    )
    return min(counts, key=lambda token: (-counts[token], token)) if counts else None


@dataclass
class Observer:
    """Collects what the planner needs; remembers since when members have been unhealthy."""

    api: NodeApi
    store: BackupStore
    me: PeerId
    replace_after: float
    backup_interval: timedelta
    etcd_tls: ClientTLS | None
    attempts: BackupAttempts  # shared with the actor, which records them
    promotions: Promotions = field(default_factory=Promotions)  # likewise
    unhealthy_since: dict[int, float] = field(default_factory=dict)
    _problems: set[str] = field(default_factory=set)

    async def assert_leadership(self, term: Term, healthy: Sequence[PeerId]) -> list[PeerId]:
        """Tell every healthy peer we lead; return those that accepted."""
        accepted: list[PeerId] = []
        notice = LeaderNotificationArgs(
            leader_id=self.me, token=term.token, view=tuple(healthy), seq_floor=term.floor
        )

        async def notify(pid: PeerId) -> None:
            try:
                answer = await self.api.notify_leader(pid, notice)
            except EtcdmgrError as e:
                self._note(f"leader notification to {pid} failed: {e}")
                return
            if answer.accepted:
                accepted.append(pid)
            else:
                self._note(f"peer {pid} refused this leader: {answer.reason}")

        async with trio.open_nursery() as nursery:
            for pid in healthy:
                nursery.start_soon(notify, pid)
        return sorted(accepted)

    def _note(self, problem: str) -> None:
        """Log a recurring problem once, not every cycle."""
        if problem not in self._problems:
            self._problems.add(problem)
            log.info("%s", problem)

    async def infos(self, peers: Sequence[str]) -> dict[str, PeerInfo]:
        out: dict[str, PeerInfo] = {}

        async def one(pid: str) -> None:
            try:
                out[pid] = await self.api.get_info(pid)
            except EtcdmgrError as e:
                self._note(f"GetInfo from {pid} failed: {e}")

        async with trio.open_nursery() as nursery:
            for pid in peers:
                nursery.start_soon(one, pid)
        return out

    async def members(
        self, infos: dict[str, PeerInfo], binaries: EtcdBinaries | None
    ) -> tuple[tuple[MemberView, ...] | None, str | None]:
        token = managed_token(infos)
        if token is None:
            return None, "no peer runs etcd"
        # Only members of the managed cluster answer for it: a stray etcd of another cluster
        # (one that was partitioned away, or restored over) must not be taken for it.
        others = sorted(
            pid
            for pid, info in infos.items()
            if info.etcd_state is not None and info.etcd_running and info.etcd_state.cluster.cluster_token != token
        )
        if others:
            self._note(f"managing cluster {token}; peers {', '.join(others)} serve another cluster")
        endpoints = [
            url
            for info in infos.values()
            if info.etcd_state is not None
            and info.etcd_running
            and info.etcd_state.cluster.cluster_token == token
            for url in client_urls(info.node, info.etcd_state.quarantined)
        ]
        if binaries is None:
            return None, "no etcdctl installed on the leader"
        client = EtcdClient(endpoints, binaries, self.etcd_tls)
        try:
            listed = await client.member_list()
        except EtcdError as e:
            return None, str(e).splitlines()[0] if str(e) else type(e).__name__
        health: dict[int, bool] = {}

        async def check(member_id: int, name: str, urls: tuple[str, ...]) -> None:
            if urls and (self.etcd_tls is not None or not urls[0].startswith("https://")):
                health[member_id] = await client.endpoint_health(urls[0])
            else:
                # No credentials here for that member (e.g. this leader has not moved to TLS
                # yet): its own node's check stands in, where it answered.
                report = infos.get(name)
                health[member_id] = report is not None and report.etcd_healthy is True

        async with trio.open_nursery() as nursery:
            for m in listed:
                nursery.start_soon(check, m.id, m.name, m.client_urls)
        now = trio.current_time()
        self.promotions.forget_all_but({m.id for m in listed if m.is_learner})
        views = []
        for m in listed:
            if health[m.id]:
                self.unhealthy_since.pop(m.id, None)
            else:
                self.unhealthy_since.setdefault(m.id, now)
            since = self.unhealthy_since.get(m.id)
            views.append(
                MemberView(
                    member_id=m.id,
                    name=m.name,
                    peer_urls=m.peer_urls,
                    client_urls=m.client_urls,
                    healthy=health[m.id],
                    is_learner=m.is_learner,
                    unhealthy_for=0.0 if since is None else now - since,
                    promotion=self.promotions.of(m.id, now),
                )
            )
        return tuple(views), None

    async def view(self, acked: Sequence[str], binaries: EtcdBinaries | None) -> ClusterView:
        spec_problem = None
        try:
            spec = await self.store.read_spec()
            if spec is not None:
                spec.validate()
        except InvalidData as e:  # a store that fails is a failed cycle, not a bad spec
            spec, spec_problem = (
                None,
                f"cluster spec cannot be used: {e}; nothing will be changed until it is fixed",
            )
        try:
            created = await self.store.read_created() is not None
        except EtcdmgrError as e:
            created = True  # an unreadable marker must never lead to a second cluster
            self._note(f"created marker unreadable ({e}); treating the cluster as created")
        listing = await self.store.list_commands()
        for problem in [*listing.problems, *listing.skipped]:
            self._note(problem)
        infos = await self.infos(acked)
        members, members_problem = await self.members(infos, binaries)
        age = await backup_age(self.store, self._note)
        metrics.newest_backup(age)
        requests = await self.store.list_backup_requests()
        backups = self.attempts.health(age, trio.current_time())  # a backup being stored counts
        return ClusterView(
            spec=spec,
            spec_problem=spec_problem,
            created=created,
            peers=infos,
            members=members,
            members_problem=members_problem,
            commands=tuple(listing.runnable),  # failed and unknown commands are never waited behind
            replace_after=self.replace_after,
            backup_due=backups.age is None or backups.age >= self.backup_interval,
            backups=backups,
            backup_requests=tuple(requests),
        )
