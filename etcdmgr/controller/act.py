"""Carry one planned action out through node RPCs, etcdctl and the store."""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import trio

from etcdmgr.backup import BackupError, BackupResult, apply_retention, fetch_backup, restore_v2, take_backup
from etcdmgr.controller import actions as a
from etcdmgr.controller.claims import Claims
from etcdmgr.controller.observe import backup_age
from etcdmgr.controller.view import ClusterView
from etcdmgr.etcd.client import ClientTLS, EtcdClient
from etcdmgr.etcd.errors import EtcdTransient
from etcdmgr.etcd.versions import EtcdBinaries, has_v2_api
from etcdmgr.model import ClusterSpec, EtcdmgrError, EtcdNode, EtcdState
from etcdmgr.model.command import Command
from etcdmgr.model.command import RestoreBackup as RestoreBackupCommand
from etcdmgr.node.launch import client_urls
from etcdmgr.node.service import JoinPhase
from etcdmgr.peer.node_api import NodeApi
from etcdmgr.store import BackupStore
from etcdmgr.store.retention import Retention

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_RETRY_FOR = 15.0  # "unhealthy cluster" right after a membership change lasts ~5 s
FRESH_BACKUP = timedelta(minutes=1)  # a backup this young covers the next membership change too
PRUNE_EVERY = 3600.0  # retention lists the whole store: at most hourly
RESTORE_HEALTHY_WITHIN = 120.0
BACKUP_BASE_SECONDS = 20.0
BACKUP_BYTES_PER_SECOND = 5e6  # far below a snapshot's real speed (about 100 MB/s here)


class ActionFailed(EtcdmgrError):
    pass


def _need(binaries: EtcdBinaries | None) -> EtcdBinaries:
    if binaries is None:
        raise ActionFailed("no etcdctl installed on the leader")
    return binaries


async def _retry_transient(what: str, fn: Callable[[], Awaitable[T]]) -> T:
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
    def __init__(
        self,
        me: str,
        api: NodeApi,
        store: BackupStore,
        scratch: Path,
        retention: Retention,
        etcd_tls: ClientTLS | None,
    ) -> None:
        self.me = me
        self.api = api
        self.etcd_tls = etcd_tls
        self.store = store
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        self.retention = retention
        self._pruned_at: float | None = None
        self._failed_commands: set[str] = set()
        self.claims = Claims(store, me)

    def _client(self, view: ClusterView, binaries: EtcdBinaries) -> EtcdClient:
        endpoints = [
            url
            for info in view.peers.values()
            if info.etcd_state is not None and info.etcd_running
            for url in client_urls(info.node, info.etcd_state.quarantined)
        ]
        if not endpoints:
            raise ActionFailed("no running member to talk to")
        return EtcdClient(endpoints, binaries, self.etcd_tls)

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
                await self.store.create_created_marker(time.time_ns())
            case a.LiftQuarantine():
                # One member at a time: the others keep quorum, so each restart is quick (a member
                # stopped while its peers are stopping too can take 10-20 s to exit).
                for pid in action.peer_ids:
                    await self.api.reconfigure(pid, quarantined=False)
            case (
                a.AddMember()
                | a.StartAddedMember()
                | a.PromoteMember()
                | a.RemoveMember()
                | a.UpdatePeerURLs()
            ):
                if isinstance(action, a.AddMember | a.RemoveMember):
                    await self._backup_before_change(view, _need(binaries))
                await self._membership(action, view, _need(binaries))
            case a.StopOrphan():
                await self.api.stop_etcd(action.peer_id)
            case a.UpgradeMember():
                await self._backup_before_change(view, _need(binaries))
                await self.api.reconfigure(action.peer_id, etcd_version=action.etcd_version)
                log.info("member %s restarted on etcd %s", action.peer_id, action.etcd_version)
            case a.LogicalVersionChange():
                await self._logical_version_change(action, view, _need(binaries))
            case a.TakeBackup():
                await self._backup(view, _need(binaries), "backup interval elapsed")
            case a.RestoreBackup():
                await self._restore(action, view, _need(binaries))
            case a.Wait():
                pass
            case _:
                raise ActionFailed(f"{type(action).__name__} is not supported yet")

    async def _backup(
        self, view: ClusterView, binaries: EtcdBinaries, why: str, endpoint: str | None = None
    ) -> BackupResult:
        """Back up from `endpoint` (default: a healthy member, this node's own first), then prune
        at most hourly."""
        if endpoint is None:
            healthy = [m for m in view.members or () if m.healthy and m.client_urls and not m.is_learner]
            if not healthy:
                raise ActionFailed("no healthy member to back up")
            # Our own member restarts only when we ask; another node's may restart under the backup.
            endpoint = min(healthy, key=lambda m: m.name != self.me).client_urls[0]
        state = self._cluster_state(view)
        client = EtcdClient([endpoint], binaries, self.etcd_tls)
        # A member that goes away mid-snapshot can leave etcdctl retrying forever: bound the
        # backup by the database's size rather than by the worst case.
        limit = (
            BACKUP_BASE_SECONDS + (await client.endpoint_status(endpoint)).db_size / BACKUP_BYTES_PER_SECOND
        )
        try:
            with trio.fail_after(limit):
                result = await take_backup(
                    client,
                    endpoint,
                    self.store,
                    view.spec,
                    state.etcd_version,
                    self.scratch,
                    with_v2=has_v2_api(state.etcd_version),
                )
        except trio.TooSlowError:
            raise ActionFailed(f"backup from {endpoint} took longer than {limit:.0f}s; gave up") from None
        log.info(
            "took backup %s (%d bytes in %.2fs, from %s; %s)",
            result.name,
            result.size,
            result.seconds,
            endpoint,
            why,
        )
        now = trio.current_time()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            await apply_retention(self.store, datetime.now(UTC), self.retention)
        return result

    async def _logical_version_change(
        self, action: a.LogicalVersionChange, view: ClusterView, binaries: EtcdBinaries
    ) -> None:
        """The original's full dump: clients are cut off first so the backup holds every write."""
        await self._each(action.peer_ids, lambda pid: self.api.reconfigure(pid, quarantined=True))
        nodes = [view.peers[pid].node for pid in action.peer_ids]
        client = EtcdClient([u for n in nodes for u in n.quarantined_client_urls], binaries, self.etcd_tls)
        endpoint = await self._healthy_endpoint(client)
        result = await self._backup(view, binaries, f"for the move to etcd {action.etcd_version}", endpoint)
        count = view.spec.member_count if view.spec else len(action.peer_ids)
        spec = ClusterSpec(count, action.etcd_version)
        await self.store.add_command(
            Command(name="", timestamp=time.time_ns(), restore_backup=RestoreBackupCommand(spec, result.name))
        )
        log.info("queued restore-backup of %s on etcd %s", result.name, action.etcd_version)

    async def _healthy_endpoint(self, client: EtcdClient) -> str:
        with trio.fail_after(RESTORE_HEALTHY_WITHIN):
            while True:
                for url in client.endpoints:
                    if await client.endpoint_health(url):
                        return url
                await trio.sleep(0.2)

    async def _backup_before_change(self, view: ClusterView, binaries: EtcdBinaries) -> None:
        age = await backup_age(self.store)
        if age is None or age > FRESH_BACKUP:
            await self._backup(view, binaries, "before a membership change")

    async def _restore(self, action: a.RestoreBackup, view: ClusterView, binaries: EtcdBinaries) -> None:
        cmd = action.command
        assert cmd.restore_backup is not None
        backup, spec = cmd.restore_backup.backup, cmd.restore_backup.cluster_spec
        if cmd.name in self._failed_commands:
            return
        token = secrets.token_urlsafe(16)
        nodes = tuple(view.peers[pid].node for pid in action.peer_ids)
        scratch = self.scratch / f"restore-{token}"
        try:
            # Fetch and verify on the leader first: a bad backup stops here, nothing is touched.
            fetched = await fetch_backup(self.store, backup, scratch)
            if not await self.claims.restore(cmd.name, token, set(view.peers)):
                return  # another leader carries it out
            others = [
                pid for pid, info in view.peers.items() if info.etcd_state and pid not in action.peer_ids
            ]
            await self._each(tuple(others), self.api.stop_etcd)
            await self._each(
                action.peer_ids,
                lambda pid: self.api.restore_backup(pid, backup, token, nodes, spec.etcd_version),
            )
            restored_urls = [u for n in nodes for u in n.quarantined_client_urls]
            # Reload through a member that answers: the others may still be starting.
            endpoint = await self._healthy_endpoint(EtcdClient(restored_urls, binaries, self.etcd_tls))
            client = EtcdClient([endpoint], binaries, self.etcd_tls)
            if has_v2_api(spec.etcd_version):
                restored = await restore_v2(client, fetched)
                log.info("restored %d v2 keys", restored)
            if fetched.v2 and fetched.info.etcd_version != spec.etcd_version:
                # A version change carries v2 keys into the v3 keyspace, as the original did for 2 -> 3.
                items = [(n.key, n.value) for n in fetched.v2 if n.value is not None]
                await client.put_many(items, spec.etcd_version)
                log.info("copied %d v2 keys into the v3 keyspace", len(items))
        except (BackupError, ActionFailed, trio.TooSlowError) as e:
            self._failed_commands.add(cmd.name)
            log.error(
                "restore-backup command %s failed: %s. Queue another restore-backup, or remove this one "
                "with `ctl delete-command %s`",
                cmd.name,
                e or "the restored cluster did not become healthy",
                cmd.name,
            )
            await self.claims.mark_failed(cmd.name, str(e) or "the restored cluster did not become healthy")
            return
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        await self.store.write_spec(spec)
        await self.store.write_created(time.time_ns())
        await self.store.remove_command(cmd.name)
        log.info(
            "restore-backup command %s done: backup %s restored into cluster %s", cmd.name, backup, token
        )

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
            # The one-cluster claim, before any member starts: of two leaders racing, one wins.
            if not await self.store.create_created_marker(time.time_ns()):
                raise ActionFailed("another leader created the cluster first; not starting a second one")
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
            case a.UpdatePeerURLs(member_id=mid, name=name, peer_urls=urls):
                await client.member_update(mid, urls)
                log.info("member %s now registered with peer URLs %s", name, ", ".join(urls))
            case a.RemoveMember(member_id=mid, name=name, stop_peer=stop):
                await _retry_transient(f"removing {name}", lambda: client.member_remove(mid))
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
