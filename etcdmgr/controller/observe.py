"""Gather one ClusterView: the leader's acked peers, their GetInfo, the store, etcd membership."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import trio

from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.etcd.client import ClientTLS, EtcdClient
from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model import EtcdmgrError, InvalidData, PeerInfo
from etcdmgr.node.launch import client_urls
from etcdmgr.peer.node_api import NodeApi
from etcdmgr.store import BackupStore
from etcdmgr.store.retention import newest_backup_age

log = logging.getLogger(__name__)


async def backup_age(store: BackupStore, note: Callable[[str], None] = log.warning) -> timedelta | None:
    """Age of the newest backup in the store (the store is the truth, not a timer in memory).
    Backups named in the future are left out, so one bad clock cannot stop all backups, and
    reported through ``note``."""
    age, future = newest_backup_age(await store.list_backups(), datetime.now(UTC))
    if future:
        note(
            f"ignoring {len(future)} backup(s) named in the future ({', '.join(future[:3])}"
            f"{', ...' if len(future) > 3 else ''}) when deciding whether a backup is due: "
            "a leader's clock was ahead when it took them"
        )
    return age


@dataclass
class Observer:
    """Collects what the planner needs; remembers since when members have been unhealthy."""

    api: NodeApi
    store: BackupStore
    me: str
    replace_after: float
    backup_interval: timedelta
    etcd_tls: ClientTLS | None
    unhealthy_since: dict[int, float] = field(default_factory=dict)
    _problems: set[str] = field(default_factory=set)

    async def assert_leadership(self, token: str, healthy: Sequence[str]) -> list[str]:
        """Tell every healthy peer we lead; return those that accepted."""
        accepted: list[str] = []

        async def notify(pid: str) -> None:
            try:
                ok, reason = await self.api.notify_leader(pid, self.me, token, healthy)
            except EtcdmgrError as e:
                self._note(f"leader notification to {pid} failed: {e}")
                return
            if ok:
                accepted.append(pid)
            else:
                self._note(f"peer {pid} refused this leader: {reason}")

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
        endpoints = [
            url
            for info in infos.values()
            if info.etcd_state is not None and info.etcd_running
            for url in client_urls(info.node, info.etcd_state.quarantined)
        ]
        if not endpoints:
            return None, "no peer runs etcd"
        if binaries is None:
            return None, "no etcdctl installed on the leader"
        client = EtcdClient(endpoints, binaries, self.etcd_tls)
        try:
            listed = await client.member_list()
        except EtcdError as e:
            return None, str(e).splitlines()[0] if str(e) else type(e).__name__
        health: dict[int, bool] = {}

        async def check(member_id: int, urls: tuple[str, ...]) -> None:
            health[member_id] = bool(urls) and await client.endpoint_health(urls[0])

        async with trio.open_nursery() as nursery:
            for m in listed:
                nursery.start_soon(check, m.id, m.client_urls)
        now = trio.current_time()
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
                )
            )
        return tuple(views), None

    async def view(self, acked: list[str], binaries: EtcdBinaries | None) -> ClusterView:
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
        return ClusterView(
            spec=spec,
            spec_problem=spec_problem,
            created=created,
            peers=infos,
            members=members,
            members_problem=members_problem,
            commands=tuple(listing.runnable),  # failed and unknown commands are never waited behind
            replace_after=self.replace_after,
            backup_due=age is None or age >= self.backup_interval,
        )
