"""The node service: carries out on this host what the leader asks, one change at a time.

Every change goes through the state file first (written atomically), then etcd is (re)started
from it, so a daemon restarted at any point finds etcd as the state file says. The parts: the
etcd child (etcd_child.py), its certificates (certs.py), the JoinCluster phases (join.py) and
restore (restore.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress

import trio

from etcdmgr.etcd.launch import EtcdLaunch
from etcdmgr.etcd.stray import kill_stray_etcd
from etcdmgr.etcd.versions import DEFAULT_BIN_DIRS, EtcdBinaries, installed_binaries, pick_binaries
from etcdmgr.model import EtcdmgrError, EtcdNode, EtcdState, PeerInfo
from etcdmgr.model.ids import ClusterName, PeerId
from etcdmgr.model.tls import ClientTLS
from etcdmgr.model.values import EtcdVersion
from etcdmgr.node.certs import NodeCerts
from etcdmgr.node.config import NodeConfig
from etcdmgr.node.etcd_child import EtcdChild
from etcdmgr.node.join import JoinPhases
from etcdmgr.node.launch import build_launch, client_urls, own_node
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.own_health import member_healthy
from etcdmgr.node.restore import restore_member
from etcdmgr.node.state_file import load_state, write_state
from etcdmgr.node.trash import prune_trash, trash_data_dir
from etcdmgr.peer.calls import DoRestoreArgs, JoinClusterArgs, ReconfigureArgs
from etcdmgr.peer.errors import RpcError
from etcdmgr.store import BackupStore

log = logging.getLogger(__name__)

# etcd's data is moved to the trash after such a stop, so a clean shutdown buys nothing (etcd's
# WAL survives SIGKILL anyway), and a member whose peers are gone can take 10-20 s on SIGTERM.
ABANDON_GRACE = 0.5


class NodeService:
    def __init__(
        self, config: NodeConfig, layout: DataLayout, peer_id: PeerId, store: BackupStore | None = None
    ) -> None:
        self.config = config
        self.layout = layout
        self.peer_id = peer_id
        self.store = store  # None: restores are refused (the daemon could not open it)
        self.me: EtcdNode = own_node(config, peer_id)
        self.state: EtcdState | None = None
        # Why this node has no state though it may hold a member's data; cleared by new state.
        self.state_problem: str | None = None
        self.bin_dirs = (*config.etcd_bin_dirs, *DEFAULT_BIN_DIRS)
        self.certs = NodeCerts(config, layout, peer_id, self.me)
        self.etcd = EtcdChild(layout, self._launch)
        self.joins = JoinPhases()
        self._lock = trio.Lock()  # one change at a time
        # The manager's etcd client certificate, renewed while running (set by the daemon).
        self.etcd_tls: Callable[[], ClientTLS | None] = lambda: None
        # The CA bundles the running etcd was started with: etcd reads them only at start.
        self._started_trust: bytes | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if await kill_stray_etcd(self.layout.etcd_pid):
            log.warning("stopped an etcd left running by a previous daemon")
        self.state, self.state_problem = await trio.to_thread.run_sync(load_state, self.layout)
        await trio.to_thread.run_sync(prune_trash, self.layout)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.etcd.run)
            if self.state is not None:
                with suppress(EtcdmgrError):  # logged, and retried, by the child
                    await self.etcd.start(self.state)
            task_status.started()

    async def check_certs(self) -> None:
        """Reissue etcd's certificates that are due or whose CA files changed."""
        await self.certs.check(self.state)

    async def trust_outdated(self) -> bool:
        """Whether the running etcd trusts other CA certificates than its bundles on disk now
        hold (a CA rotation changed them since it started): only a restart makes it read them."""
        state = self.state
        if state is None or not self.etcd_running() or self._started_trust is None:
            return False
        now = await trio.to_thread.run_sync(self.certs.trusted_bundles, state.cluster.cluster_token)
        return now is not None and now != self._started_trust

    async def binaries_for(self, version: EtcdVersion) -> EtcdBinaries:
        return pick_binaries(await installed_binaries(self.bin_dirs), version)

    async def _launch(self, state: EtcdState) -> EtcdLaunch:
        binaries = await self.binaries_for(state.etcd_version)
        token = state.cluster.cluster_token
        tls = await trio.to_thread.run_sync(self.certs.issue, token)
        self._started_trust = await trio.to_thread.run_sync(self.certs.trusted_bundles, token)
        return build_launch(self.config, self.layout, self.me, state, binaries, tls=tls)

    def etcd_running(self) -> bool:
        return self.etcd.running()

    async def _apply(self, state: EtcdState | None, *, stop_grace: float | None = None) -> None:
        """Record the new state, then restart etcd to match it.

        Shielded: a caller cancelled half way (e.g. the leader's connection dropped) must not
        leave an etcd running that this service no longer tracks."""
        with trio.CancelScope(shield=True):
            await self.etcd.stop(stop_grace)
            try:
                await trio.to_thread.run_sync(write_state, self.layout.state, state)
            except OSError as e:
                # The state file still says what it said (it is replaced atomically): so does etcd.
                if self.state is not None:
                    with suppress(EtcdmgrError):
                        await self.etcd.start(self.state)
                raise EtcdmgrError(
                    f"cannot write the state file {self.layout.state}: {e.strerror or e}"
                ) from e
            self.state = state
            if state is not None:
                self.state_problem = None
                await self.etcd.start(state)

    # --- what the leader calls -------------------------------------------------------------------

    async def info(self, cluster_name: ClusterName) -> PeerInfo:
        return PeerInfo(
            peer_id=self.peer_id,
            cluster_name=cluster_name,
            node=self.me,
            etcd_state=self.state,
            etcd_running=self.etcd_running(),
            installed_versions=tuple(EtcdVersion(v) for v in await installed_binaries(self.bin_dirs)),
            state_problem=self.state_problem,
            etcd_problem=self.etcd.problem,
            etcd_healthy=await self._own_health(),
            etcd_trust_outdated=await self.trust_outdated(),
        )

    async def _own_health(self) -> bool | None:
        """Our member's /health, checked with our own credentials (None: no member runs here)."""
        state = self.state
        if state is None or not self.etcd_running():
            return None
        return await member_healthy(client_urls(self.me, state.quarantined), self.etcd_tls()) is None

    async def join_cluster(self, call: JoinClusterArgs) -> None:
        async with self._lock:
            state = self.joins.admit(call, self.state, self.peer_id, trio.current_time())
            if state is None:
                return
            await self.binaries_for(call.etcd_version)  # refuse before writing any state
            await trio.to_thread.run_sync(trash_data_dir, self.layout, call.cluster_token)
            log.info(
                "%s: starting etcd %s as a member of cluster %s%s",
                call.phase.value,
                call.etcd_version,
                call.cluster_token,
                " (quarantined)" if call.quarantined else "",
            )
            await self._apply(state)

    async def reconfigure(self, call: ReconfigureArgs) -> None:
        async with self._lock:
            if self.state is None:
                raise RpcError("no-etcd", "this node runs no etcd")
            state = self.state
            if call.quarantined is not None:
                state = state.with_changes(quarantined=call.quarantined)
            if call.etcd_version is not None:
                await self.binaries_for(call.etcd_version)
                state = state.with_changes(etcd_version=call.etcd_version)
            if state == self.state and self.etcd_running() and not call.restart:
                return
            log.info(
                "reconfigure: etcd %s, %s%s",
                state.etcd_version,
                "quarantined" if state.quarantined else "serving clients",
                "; restarting it to read its CA bundles again" if call.restart else "",
            )
            # A quarantined member serves no clients, and its peers stop at the same moment when
            # the quarantine is lifted: on SIGTERM the etcd leader hands leadership to a peer that
            # is stopping and lingers for seconds, and a peer that restarts meanwhile publishes
            # itself to that dying leader and serves only after etcd retries, ~7 s later. So all
            # are killed at once; etcd's data is crash-safe.
            grace = 0.0 if self.state.quarantined else None
            await self._apply(state.with_changes(new_cluster=False), stop_grace=grace)

    async def restore_backup(self, call: DoRestoreArgs) -> None:
        """Become a quarantined member of a new cluster whose data is backup `call.backup`."""
        async with self._lock:
            if self.peer_id not in {n.name for n in call.nodes}:
                raise RpcError("bad-request", "this node is not among the restored cluster's nodes")
            if self.store is None:
                raise RpcError("failed", "this node has no usable backup store to restore from")
            binaries = await self.binaries_for(call.etcd_version)
            state = await restore_member(self.store, self.layout, binaries, self.me, call, self._leave)
            await self._apply(state)

    async def _leave(self) -> EtcdState | None:
        """Stop etcd at once and forget the state; return the state it had."""
        old = self.state
        await self._apply(None, stop_grace=ABANDON_GRACE)
        return old

    async def stop_etcd(self) -> None:
        """Leave the cluster for good: stop etcd, move its data to the trash, forget the state."""
        async with self._lock:
            old = await self._leave()
            if old is not None:
                await trio.to_thread.run_sync(trash_data_dir, self.layout, old.cluster.cluster_token)
                log.info("left cluster %s; this node is empty now", old.cluster.cluster_token)
