"""Carry out a restore-backup command: check the backup on the leader, restore it on the chosen
nodes as a new quarantined cluster, reload the v2 keys, then record the command as done."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

import trio

from etcdmgr.backup import BackupError, check_backup, restore_v2, saves_v2
from etcdmgr.controller import actions as a
from etcdmgr.controller.claims import Claims
from etcdmgr.controller.errors import ActionFailed
from etcdmgr.controller.fanout import each
from etcdmgr.controller.view import ClusterView
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model.ids import CommandName, new_cluster_token
from etcdmgr.model.tls import ClientTLS
from etcdmgr.ops import metrics
from etcdmgr.peer.calls import DoRestoreArgs
from etcdmgr.peer.node_api import NodeApi
from etcdmgr.store import BackupStore

log = logging.getLogger(__name__)

RESTORE_HEALTHY_WITHIN = 120.0


async def healthy_endpoint(client: EtcdClient) -> str:
    """The first of the client's endpoints that reports healthy, waiting for one to."""
    with trio.fail_after(RESTORE_HEALTHY_WITHIN):
        while True:
            for url in client.endpoints:
                if await client.endpoint_health(url):
                    return url
            await trio.sleep(0.2)


class Restorer:
    def __init__(
        self,
        api: NodeApi,
        store: BackupStore,
        scratch: Path,
        etcd_tls: ClientTLS | None,
        claims: Claims,
        etcd_env: Mapping[str, str],
    ) -> None:
        self.api = api
        self.etcd_env = etcd_env
        self.claims = claims
        self.store = store
        self.scratch = scratch
        self.etcd_tls = etcd_tls
        self._failed_commands: set[CommandName | None] = set()

    async def restore(self, action: a.RestoreBackup, view: ClusterView, binaries: EtcdBinaries) -> None:
        """A failed restore is logged with the way out and not retried by this leader."""
        cmd = action.command
        assert cmd.restore_backup is not None
        backup, spec = cmd.restore_backup.backup, cmd.restore_backup.cluster_spec
        assert cmd.name is not None, "a listed command has its name"
        if cmd.name in self._failed_commands:
            return
        token = new_cluster_token()
        nodes = tuple(view.peers[pid].node for pid in action.peer_ids)
        restore = DoRestoreArgs(backup=backup, cluster_token=token, nodes=nodes, etcd_version=spec.etcd_version)
        scratch = self.scratch / f"restore-{token}"
        try:
            # Verify on the leader first (read once, nothing written): a bad backup stops here, and
            # nothing is touched. Each node then unpacks it as it streams, checked again.
            fetched = await check_backup(self.store, backup, scratch)
            if not await self.claims.restore(cmd.name, token, set(view.peers)):
                return  # another leader carries it out
            others = [
                pid for pid, info in view.peers.items() if info.etcd_state and pid not in action.peer_ids
            ]
            await each(others, self.api.stop_etcd)
            done_on: list[str] = []
            command = cmd.name

            async def restore_on(pid: str) -> None:
                await self.api.restore_backup(pid, restore)
                done_on.append(pid)
                await self.claims.progress(command, done_on)  # for `ctl restore-backup --wait`

            await each(action.peer_ids, restore_on)
            restored_urls = [u for n in nodes for u in n.quarantined_client_urls]
            # Reload through a member that answers: the others may still be starting.
            endpoint = await healthy_endpoint(EtcdClient(restored_urls, binaries, self.etcd_tls))
            client = EtcdClient([endpoint], binaries, self.etcd_tls)
            if saves_v2(spec.etcd_version, self.etcd_env):
                restored = await restore_v2(client, fetched)
                log.info("restored %d v2 keys", restored)
            elif fetched.v2:
                log.warning(
                    "backup %s holds %d v2 keys, but etcd %s serves no v2 API here (ETCD_ENABLE_V2=false, "
                    "or a version without it): they are not restored into the v2 keyspace",
                    backup,
                    len(fetched.v2),
                    spec.etcd_version,
                )
            if fetched.v2 and fetched.info.etcd_version != spec.etcd_version:
                # A version change carries v2 keys into the v3 keyspace, as the original did for
                # 2 -> 3; a key v3 already holds is newer than its v2 namesake and is kept.
                items = [(n.key, n.value) for n in fetched.v2 if n.value is not None]
                copied, kept = await client.put_absent(items, spec.etcd_version)
                log.info(
                    "copied %d v2 keys into the v3 keyspace; skipped %d that v3 already holds", copied, kept
                )
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
            metrics.restore_finished(ok=False)
            return
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        await self.store.write_spec(spec)
        await self.store.write_created(time.time_ns())
        await self.store.remove_command(cmd.name)
        metrics.restore_finished(ok=True)
        log.info(
            "restore-backup command %s done: backup %s restored into cluster %s", cmd.name, backup, token
        )
