"""Carry one planned action out through node RPCs, etcdctl and the store."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable

import trio

from etcdmgr.controller import actions as a
from etcdmgr.controller.view import ClusterView
from etcdmgr.etcd.client import EtcdClient, Member
from etcdmgr.etcd.errors import EtcdTransient
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model import EtcdmgrError, EtcdNode, EtcdState
from etcdmgr.node.launch import client_urls
from etcdmgr.node.service import JoinPhase
from etcdmgr.peer.node_api import NodeApi
from etcdmgr.store import BackupStore

log = logging.getLogger(__name__)

TRANSIENT_RETRY_FOR = 15.0  # "unhealthy cluster" right after a membership change lasts ~5 s


class ActionFailed(EtcdmgrError):
    pass


async def _retry_transient(what: str, fn: Callable[[], Awaitable[Member | None]]) -> Member | None:
    deadline = trio.current_time() + TRANSIENT_RETRY_FOR
    while True:
        try:
            return await fn()
        except EtcdTransient as e:
            if trio.current_time() > deadline:
                raise
            log.info("%s: etcd says %s; retrying", what, str(e).splitlines()[0])
            await trio.sleep(1.0)


class Actor:
    def __init__(self, api: NodeApi, store: BackupStore) -> None:
        self.api = api
        self.store = store

    def _client(self, view: ClusterView, binaries: EtcdBinaries) -> EtcdClient:
        endpoints = [
            url
            for info in view.peers.values()
            if info.etcd_state is not None and info.etcd_running
            for url in client_urls(info.node, info.etcd_state.quarantined)
        ]
        if not endpoints:
            raise ActionFailed("no running member to talk to")
        return EtcdClient(endpoints, binaries)

    @staticmethod
    def _cluster_state(view: ClusterView) -> EtcdState:
        states = [i.etcd_state for i in view.peers.values() if i.etcd_state is not None]
        if not states:
            raise ActionFailed("no peer reports the cluster's state")
        return states[0]

    async def act(self, action: a.Action, view: ClusterView, binaries: EtcdBinaries | None) -> None:
        match action:
            case a.CreateCluster():
                await self._create(action, view)
            case a.MarkCreated():
                await self.store.write_created(time.time_ns())
            case a.LiftQuarantine():
                await self._each(action.peer_ids, lambda pid: self.api.reconfigure(pid, quarantined=False))
            case a.AddMember() | a.StartAddedMember() | a.PromoteMember() | a.RemoveMember():
                if binaries is None:
                    raise ActionFailed("no etcdctl installed on the leader")
                await self._membership(action, view, binaries)
            case a.StopOrphan():
                await self.api.stop_etcd(action.peer_id)
            case a.Wait():
                pass
            case _:
                raise ActionFailed(f"{type(action).__name__} is not supported yet")

    async def _each(self, peer_ids: tuple[str, ...], fn: Callable[[str], Awaitable[None]]) -> None:
        errors: list[str] = []

        async def one(pid: str) -> None:
            try:
                await fn(pid)
            except EtcdmgrError as e:
                errors.append(f"{pid}: {e}")

        async with trio.open_nursery() as nursery:
            for pid in peer_ids:
                nursery.start_soon(one, pid)
        if errors:
            raise ActionFailed("; ".join(errors))

    async def _create(self, action: a.CreateCluster, view: ClusterView) -> None:
        if await self.store.read_created() is not None:
            raise ActionFailed("the created marker appeared meanwhile; not creating another cluster")
        token = secrets.token_urlsafe(16)
        nodes = tuple(view.peers[pid].node for pid in action.peer_ids)
        prepare = JoinPhase.PREPARE.value
        try:
            await self._each(
                action.peer_ids,
                lambda pid: self.api.join_cluster(pid, prepare, token, nodes, action.etcd_version, True),
            )
        except ActionFailed:
            cancel = JoinPhase.CANCEL_PREPARE.value
            with trio.move_on_after(10):
                await self._each(
                    action.peer_ids,
                    lambda pid: self.api.join_cluster(pid, cancel, token, nodes, action.etcd_version, True),
                )
            raise
        initial = JoinPhase.INITIAL_CLUSTER.value
        await self._each(
            action.peer_ids,
            lambda pid: self.api.join_cluster(pid, initial, token, nodes, action.etcd_version, True),
        )
        # Marked at once, so no later leader can ever create a second cluster.
        await self.store.write_created(time.time_ns())
        log.info("created cluster %s (quarantined until healthy)", token)

    async def _membership(self, action: a.Action, view: ClusterView, binaries: EtcdBinaries) -> None:
        client = self._client(view, binaries)
        match action:
            case a.AddMember(peer_id=pid, learner=learner):
                await self._join(client, view, pid, learner)
            case a.StartAddedMember(peer_id=pid):
                await self._join(client, view, pid, None)
            case a.PromoteMember(member_id=mid, name=name):
                try:
                    await client.member_promote(mid)
                    log.info("promoted %s to a voting member", name or f"{mid:x}")
                except EtcdTransient as e:
                    log.info("learner %s not ready for promotion yet: %s", name, str(e).splitlines()[0])
            case a.RemoveMember(member_id=mid, name=name, stop_peer=stop):
                await client.member_remove(mid)
                log.info("removed member %s (%x)", name, mid)
                if stop is not None:
                    await self.api.stop_etcd(stop)

    async def _join(self, client: EtcdClient, view: ClusterView, pid: str, learner: bool | None) -> None:
        """Add `pid` to etcd (unless `learner` is None: already added) and start its member."""
        state = self._cluster_state(view)
        node = view.peers[pid].node
        token = state.cluster.cluster_token
        prepare = JoinPhase.PREPARE.value
        await self.api.join_cluster(pid, prepare, token, (node,), state.etcd_version, False)
        if learner is not None:
            await _retry_transient(f"adding {pid}", lambda: client.member_add(pid, node.peer_urls, learner))
        members = await client.member_list()
        nodes = tuple(
            node
            if (m.name == pid or (not m.name and set(m.peer_urls) & set(node.peer_urls)))
            else EtcdNode(name=m.name, peer_urls=m.peer_urls)
            for m in members
        )
        await self.api.join_cluster(
            pid, JoinPhase.JOIN_EXISTING.value, token, nodes, state.etcd_version, state.quarantined
        )
        log.info("peer %s joined cluster %s", pid, token)
