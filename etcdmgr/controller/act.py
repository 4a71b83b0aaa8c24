"""Carry one planned action out through node RPCs, etcdctl and the store."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

import trio

from etcdmgr.backup import Pruner
from etcdmgr.controller import actions as a
from etcdmgr.controller.backoff import BackupAttempts, Promotions
from etcdmgr.controller.backups import Backups, cluster_state
from etcdmgr.controller.claims import Claims
from etcdmgr.controller.drills import Drills
from etcdmgr.controller.errors import ActionFailed, BackupFailed
from etcdmgr.controller.facts import leader_successor
from etcdmgr.controller.fanout import each
from etcdmgr.controller.restore import Restorer, healthy_endpoint
from etcdmgr.controller.view import ClusterView
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdError, EtcdTransient
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model import ClusterSpec, EtcdmgrError, EtcdNode
from etcdmgr.model.command import Command
from etcdmgr.model.command import RestoreBackup as RestoreBackupCommand
from etcdmgr.model.ids import BackupName, new_cluster_token, parse_peer_id
from etcdmgr.model.tls import ClientTLS
from etcdmgr.node.launch import client_urls
from etcdmgr.peer.calls import JoinClusterArgs, JoinPhase, ReconfigureArgs
from etcdmgr.peer.node_api import NodeApi
from etcdmgr.store import BackupStore
from etcdmgr.store.retention import Retention

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_RETRY_FOR = 15.0  # "unhealthy cluster" right after a membership change lasts ~5 s
TRANSIENT_RETRY_EVERY = 0.1  # etcd allows the next change as soon as it is connected for 5 s
PROMOTE_WAIT = 5.0  # a learner of a small cluster catches up within a second; else the planner promotes


def _need(binaries: EtcdBinaries | None) -> EtcdBinaries:
    if binaries is None:
        raise ActionFailed("no etcdctl installed on the leader")
    return binaries


async def _retry_transient(
    what: str, fn: Callable[[], Awaitable[T]], retry_for: float = TRANSIENT_RETRY_FOR
) -> T:
    """`fn()`, retried while etcd refuses for now (EtcdTransient), for up to `retry_for` seconds;
    logged once when etcd first refuses and once when it allows."""
    started = trio.current_time()
    refused = False
    while True:
        try:
            result = await fn()
        except EtcdTransient as e:
            if trio.current_time() - started > retry_for:
                raise
            if not refused:
                log.info("%s: etcd says %s; retrying", what, str(e).splitlines()[0])
                refused = True
            await trio.sleep(TRANSIENT_RETRY_EVERY)
            continue
        if refused:
            log.info("%s: etcd allowed it after %.1fs", what, trio.current_time() - started)
        return result


class Actor:
    """Dispatches each action; backups (controller/backups.py) and restores
    (controller/restore.py) have their own modules."""

    def __init__(
        self,
        me: str,
        api: NodeApi,
        store: BackupStore,
        scratch: Path,
        retention: Retention,
        etcd_tls: ClientTLS | None,
        *,
        attempts: BackupAttempts | None = None,
        promotions: Promotions | None = None,
        etcd_env: Mapping[str, str] = MappingProxyType({}),
        drills: Drills | None = None,
    ) -> None:
        """`attempts` and `promotions` are shared with the Observer, which shows them to the
        planner; `etcd_env` holds the daemon's ETCD_* variables, which it passes on to etcd."""
        self.api = api
        self.drills = drills
        self.etcd_tls = etcd_tls
        self.store = store
        self.promotions = promotions or Promotions()
        scratch.mkdir(parents=True, exist_ok=True)
        attempts = attempts or BackupAttempts(base=10.0, cap=900.0)  # the daemon's default intervals
        self.pruner = Pruner(store, retention)
        self.backups = Backups(me, store, scratch, self.pruner, etcd_tls, attempts, etcd_env)
        self.restorer = Restorer(api, store, scratch, etcd_tls, Claims(store, me), etcd_env)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The actor's background tasks (the daemon runs them): pruning, and storing the backups
        taken before a change."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.pruner.run)
            await nursery.start(self.backups.run)
            task_status.started()

    def _client(self, view: ClusterView, binaries: EtcdBinaries, without: str | None = None) -> EtcdClient:
        """A client of the running members; not of peer `without`'s member while others run."""
        running = {
            pid: client_urls(info.node, info.etcd_state.quarantined)
            for pid, info in view.peers.items()
            if info.etcd_state is not None and info.etcd_running
        }
        endpoints = [url for pid, urls in running.items() if pid != without for url in urls] or [
            url for urls in running.values() for url in urls
        ]
        if not endpoints:
            raise ActionFailed("no running member to talk to")
        return EtcdClient(endpoints, binaries, self.etcd_tls)

    async def act(self, action: a.Action, view: ClusterView, binaries: EtcdBinaries | None) -> bool:
        """Carry `action` out. False when it changed nothing: its backup failed (recorded for the
        planner, which backs off), so the loop need not look again soon."""
        match action:
            case a.CreateCluster():
                await self._create(action, view)
            case a.MarkCreated():
                await self.store.create_created_marker(time.time_ns())
            case a.LiftQuarantine():
                # Together: the planner lifts several only when no client uses the cluster.
                lift = ReconfigureArgs(quarantined=False)
                await each(action.peer_ids, lambda pid: self.api.reconfigure(pid, lift))
            case a.PromoteMember():
                return await self._promote(action, view, _need(binaries))
            case a.AddMember() | a.StartAddedMember() | a.RemoveMember() | a.UpdatePeerURLs():
                if isinstance(action, a.AddMember | a.RemoveMember) and action.backup_first:
                    # The change waits for the snapshot only; it is compressed and stored meanwhile.
                    if not await self.backups.snapshot_first(view, _need(binaries), "before a membership change"):
                        return False  # the planner waits for the retry, or goes ahead without one
                await self._membership(action, view, _need(binaries))
            case a.StopOrphan():
                await self.api.stop_etcd(action.peer_id)
            case a.UpgradeMember():
                if action.backup_first:
                    if not await self.backups.snapshot_first(view, _need(binaries), "before a version change"):
                        return False
                await self.api.reconfigure(action.peer_id, ReconfigureArgs(etcd_version=action.etcd_version))
                log.info("member %s restarted on etcd %s", action.peer_id, action.etcd_version)
            case a.RestartMember():
                await self.api.reconfigure(action.peer_id, ReconfigureArgs(restart=True))
                log.info(
                    "etcd on %s restarted: it trusts the CA certificates of its files now", action.peer_id
                )
            case a.LogicalVersionChange():
                return await self._logical_version_change(action, view, _need(binaries))
            case a.TakeBackup():
                if action.requests:
                    why = "requested by ctl backup-now"
                elif self.backups.attempts.failures:
                    why = "retrying after a failure"
                else:
                    why = "backup interval elapsed"
                result = await self.backups.take(view, _need(binaries), why)
                if result is None:
                    return False
                await self.store.remove_backup_requests(action.requests)
                if self.drills is not None:
                    await self.drills.after_backup(view.peers, result.name)
                return True
            case a.RestoreBackup():
                await self.restorer.restore(action, view, _need(binaries))
            case a.Wait():
                return False
            case _:
                raise ActionFailed(f"{type(action).__name__} is not supported yet")
        return True

    async def _logical_version_change(
        self, action: a.LogicalVersionChange, view: ClusterView, binaries: EtcdBinaries
    ) -> bool:
        """The original's full dump: clients are cut off first so the backup holds every write.

        If the backup or queuing its restore fails, the quarantine is lifted again and the
        failure recorded as a failed backup: the planner then waits, with the cluster serving,
        until a backup succeeds, instead of quarantining it again at the next cycle.
        """
        quarantine = ReconfigureArgs(quarantined=True)
        try:
            await each(action.peer_ids, lambda pid: self.api.reconfigure(pid, quarantine))
            name = await self._back_up_for(action, view, binaries)
            count = view.spec.member_count if view.spec else len(action.peer_ids)
            spec = ClusterSpec(count, action.etcd_version)
            await self.store.add_command(
                Command(name=None, timestamp=time.time_ns(), restore_backup=RestoreBackupCommand(spec, name))
            )
        except (EtcdmgrError, trio.TooSlowError) as e:
            if not isinstance(e, BackupFailed):
                self.backups.failed(f"the move to etcd {action.etcd_version} failed: {e or 'timed out'}")
            log.warning("the move to etcd %s did not happen: lifting the quarantine", action.etcd_version)
            lift = ReconfigureArgs(quarantined=False)
            await each(action.peer_ids, lambda pid: self.api.reconfigure(pid, lift))
            return False
        log.info("queued restore-backup of %s on etcd %s", name, action.etcd_version)
        return True

    async def _back_up_for(
        self, action: a.LogicalVersionChange, view: ClusterView, binaries: EtcdBinaries
    ) -> BackupName:
        nodes = [view.peers[pid].node for pid in action.peer_ids]
        client = EtcdClient([u for n in nodes for u in n.quarantined_client_urls], binaries, self.etcd_tls)
        endpoint = await healthy_endpoint(client)
        why = f"for the move to etcd {action.etcd_version}"
        result = await self.backups.take(view, binaries, why, endpoint)
        if result is None:
            raise BackupFailed(why)
        return result.name

    async def _create(self, action: a.CreateCluster, view: ClusterView) -> None:
        if await self.store.read_created() is not None:
            raise ActionFailed("the created marker appeared meanwhile; not creating another cluster")
        nodes = tuple(view.peers[pid].node for pid in action.peer_ids)
        join = JoinClusterArgs(
            phase=JoinPhase.PREPARE,
            cluster_token=new_cluster_token(),
            nodes=nodes,
            etcd_version=action.etcd_version,
            # A new cluster holds no data clients could write over before it is whole: no
            # quarantine, so no second start to lift one (a restore is quarantined).
            quarantined=False,
        )
        try:
            await each(action.peer_ids, lambda pid: self.api.join_cluster(pid, join))
            # The one-cluster claim, before any member starts: of two leaders racing, one wins.
            if not await self.store.create_created_marker(time.time_ns()):
                raise ActionFailed("another leader created the cluster first; not starting a second one")
        except ActionFailed:
            cancel = replace(join, phase=JoinPhase.CANCEL_PREPARE)
            with trio.move_on_after(10):
                await each(action.peer_ids, lambda pid: self.api.join_cluster(pid, cancel))
            raise
        initial = replace(join, phase=JoinPhase.INITIAL_CLUSTER)
        await each(action.peer_ids, lambda pid: self.api.join_cluster(pid, initial))
        log.info("created cluster %s", join.cluster_token)

    async def _membership(self, action: a.Action, view: ClusterView, binaries: EtcdBinaries) -> None:
        client = self._client(view, binaries)
        match action:
            case a.AddMember(peer_id=pid, learner=learner):
                await self._join(client, view, pid, learner)
            case a.StartAddedMember(peer_id=pid):
                await self._join(client, view, pid, None)
            case a.UpdatePeerURLs(member_id=mid, name=name, peer_urls=urls):
                await client.member_update(mid, urls)
                log.info("member %s now registered with peer URLs %s", name, ", ".join(urls))
            case a.RemoveMember(member_id=mid, name=name, stop_peer=stop):
                await self._hand_over_leadership(client, view, mid, name)
                # Not through the leaving member: it stops as the removal applies, and its answer
                # to a retried remove would be "server stopped" for a removal that happened.
                others = self._client(view, binaries, without=name)
                await _retry_transient(f"removing {name}", lambda: others.member_remove(mid))
                log.info("removed member %s (%x)", name, mid)
                if stop is not None:
                    await self.api.stop_etcd(stop)

    async def _promote(self, action: a.PromoteMember, view: ClusterView, binaries: EtcdBinaries) -> bool:
        """Promote a learner; a refusal (e.g. not in sync with the leader yet) is recorded, and
        the planner retries it after a growing pause. False when it failed."""
        name = action.name or f"{action.member_id:x}"
        try:
            await self._client(view, binaries).member_promote(action.member_id)
        except EtcdError as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            delay = self.promotions.failed(action.member_id, why, trio.current_time())
            log.info("learner %s not promoted: %s; next try in %.0fs", name, why, delay)
            return False
        log.info("promoted %s to a voting member", name)
        return True

    async def _hand_over_leadership(self, client: EtcdClient, view: ClusterView, mid: int, name: str) -> None:
        """If member `mid`, about to be removed, leads etcd, move its leadership to a healthy
        voting member that stays first: removing the leader costs an election, 2-3 s in which
        no write succeeds. When that fails, the removal goes ahead (etcd elects a leader)."""
        leaving = [m for m in view.members or () if m.member_id == mid and m.healthy and not m.is_learner]
        successor = leader_successor(view.members or (), mid)
        if not leaving or successor is None:
            return  # only a healthy voting member can be the leader
        try:
            leader = await self._etcd_leader(client)
            if leader != mid:
                return
            await client.move_leader(successor.member_id)
        except EtcdError as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            log.warning("could not move etcd's leadership away from %s before removing it: %s", name, why)
            return
        log.info("moved etcd's leadership from %s to %s before removing %s", name, successor.name, name)

    @staticmethod
    async def _etcd_leader(client: EtcdClient) -> int:
        """The member id of etcd's leader, as the first member that answers knows it."""
        last = EtcdError("no member named a leader in its endpoint status")
        for endpoint in client.endpoints:
            try:
                status = await client.endpoint_status(endpoint)
            except EtcdError as e:
                last = e
                continue
            if status.leader_id:
                return status.leader_id
        raise last

    async def _join(self, client: EtcdClient, view: ClusterView, pid: str, learner: bool | None) -> None:
        """Add `pid` to etcd (unless `learner` is None: already added) and start its member."""
        state = cluster_state(view)
        node = view.peers[pid].node
        token = state.cluster.cluster_token
        prepare = JoinClusterArgs(
            phase=JoinPhase.PREPARE,
            cluster_token=token,
            nodes=(node,),
            etcd_version=state.etcd_version,
            quarantined=False,
        )
        await self.api.join_cluster(pid, prepare)
        added = None
        if learner is not None:
            added = await _retry_transient(
                f"adding {pid}", lambda: client.member_add(pid, node.peer_urls, learner)
            )
        members = await client.member_list()
        nodes = tuple(
            node
            if (m.name == pid or (not m.name and set(m.peer_urls) & set(node.peer_urls)))
            # etcd's member list is read here first: its names must be peer ids too.
            else EtcdNode(name=parse_peer_id(m.name, "etcd member name"), peer_urls=m.peer_urls)
            for m in members
        )
        join = replace(prepare, phase=JoinPhase.JOIN_EXISTING, nodes=nodes, quarantined=state.quarantined)
        await self.api.join_cluster(pid, join)
        log.info("peer %s joined cluster %s", pid, token)
        if added is not None and added.is_learner:
            await self._promote_when_ready(client, pid, added.id)

    async def _promote_when_ready(self, client: EtcdClient, pid: str, mid: int) -> None:
        """Promote the learner just started as soon as etcd allows (it has caught up), rather
        than a cycle later; if it has not within PROMOTE_WAIT, the planner's rule promotes it."""
        try:
            await _retry_transient(f"promoting {pid}", lambda: client.member_promote(mid), PROMOTE_WAIT)
        except EtcdTransient as e:
            log.info("learner %s not ready for promotion yet: %s", pid, str(e).splitlines()[0])
            return
        log.info("promoted %s to a voting member", pid)
