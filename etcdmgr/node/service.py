"""The node service: owns this host's etcd child and carries out what the leader asks.

Every change goes through the state file first (written atomically), then etcd is (re)started
from it, so a daemon restarted at any point finds etcd as the state file says.
"""

from __future__ import annotations

import logging
import shutil

import trio

from etcdmgr.backup import fetch_backup, restore_data_dir
from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.process import EtcdProcess
from etcdmgr.etcd.stray import kill_stray_etcd
from etcdmgr.etcd.versions import DEFAULT_BIN_DIRS, EtcdBinaries, installed_binaries, pick_binaries
from etcdmgr.model import EtcdCluster, EtcdNode, EtcdState, InvalidData, PeerInfo
from etcdmgr.model.ids import ClusterName, ClusterToken, PeerId
from etcdmgr.model.values import EtcdVersion
from etcdmgr.node.config import NodeConfig
from etcdmgr.node.launch import build_launch, own_node
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.state_file import read_state, set_aside, write_state
from etcdmgr.peer.calls import DoRestoreArgs, JoinClusterArgs, JoinPhase, ReconfigureArgs
from etcdmgr.peer.errors import RpcError
from etcdmgr.pki.etcd_tls import EtcdNodeTls, issue_etcd_node_certs, needs_reissue
from etcdmgr.store import open_store

log = logging.getLogger(__name__)

PREPARE_TTL = 60.0
# etcd's data is moved to the trash after such a stop, so a clean shutdown buys nothing (etcd's
# WAL survives SIGKILL anyway), and a member whose peers are gone can take 10-20 s on SIGTERM.
ABANDON_GRACE = 0.5
RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


class NodeService:
    def __init__(self, config: NodeConfig, layout: DataLayout, peer_id: PeerId) -> None:
        self.config = config
        self.layout = layout
        self.peer_id = peer_id
        self.me: EtcdNode = own_node(config, peer_id)
        self.state: EtcdState | None = None
        # Why this node has no state though it may hold a member's data; cleared by new state.
        self.state_problem: str | None = None
        self.bin_dirs = (*config.etcd_bin_dirs, *DEFAULT_BIN_DIRS)
        self._proc: EtcdProcess | None = None
        self._lock = trio.Lock()  # one change at a time
        self._prepared: tuple[ClusterToken, float] | None = None  # (cluster token, deadline)
        self._nursery: trio.Nursery | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if await kill_stray_etcd(self.layout.etcd_pid):
            log.warning("stopped an etcd left running by a previous daemon")
        self.state = await trio.to_thread.run_sync(self._load_state)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                if self.state is not None:
                    try:
                        await self._start_etcd(self.state)
                    except EtcdError as e:
                        log.error("cannot start etcd from the state file: %s", e)
                task_status.started()
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await self._stop_etcd()

    def _load_state(self) -> EtcdState | None:
        """The state file, checked against the data dir (blocking: it may rewrite the file)."""
        try:
            state = read_state(self.layout.state)
        except InvalidData as e:
            try:
                self.state_problem = f"{e}; moved aside to {set_aside(self.layout.state).name}"
            except OSError as err:
                self.state_problem = f"{e}; cannot move it aside: {err.strerror or err}"
            log.error(
                "%s. This node runs no etcd and tells the leader it cannot read its state "
                "(its member is not replaced at once)",
                self.state_problem,
            )
            return None
        if state is None:
            leftovers = self.layout.etcd_data_dirs()
            if leftovers:
                # E.g. a state file set aside at an earlier start: this node is not simply empty.
                self.state_problem = f"no state file, but etcd data under data/: {', '.join(leftovers)}"
                log.warning("%s; this node tells the leader and waits", self.state_problem)
            else:
                log.info("no etcd state: this node is empty and waits for the leader")
            return None
        data = self.layout.etcd_data(state.cluster.cluster_token)
        if not data.exists():
            log.warning(
                "state names cluster %s but its data dir %s is gone: this node is empty",
                state.cluster.cluster_token,
                data,
            )
            write_state(self.layout.state, None)
            return None
        if state.new_cluster:
            # The data exists, so the member was bootstrapped; never bootstrap it again.
            state = state.with_changes(new_cluster=False)
            write_state(self.layout.state, state)
        log.info(
            "etcd state: member of cluster %s, etcd %s%s",
            state.cluster.cluster_token,
            state.etcd_version,
            ", quarantined" if state.quarantined else "",
        )
        return state

    # --- etcd child ------------------------------------------------------------------------------

    async def binaries_for(self, version: EtcdVersion) -> EtcdBinaries:
        return pick_binaries(await installed_binaries(self.bin_dirs), version)

    async def _start_etcd(self, state: EtcdState, *, force_new_cluster: bool = False) -> None:
        assert self._nursery is not None
        launch = build_launch(
            self.config,
            self.layout,
            self.me,
            state,
            await self.binaries_for(state.etcd_version),
            force_new_cluster=force_new_cluster,
            tls=await trio.to_thread.run_sync(self._issue_certs, state.cluster.cluster_token),
        )
        proc = await EtcdProcess.start(launch, self.layout.root, pid_file=self.layout.etcd_pid)
        self._proc = proc
        self._nursery.start_soon(self._watch, proc, state)

    async def _watch(self, proc: EtcdProcess, state: EtcdState) -> None:
        """Restart etcd if it exits without being asked to, with a growing pause."""
        attempt = 0
        while True:
            rc = await proc.wait_exited()
            if self._proc is not proc:
                return
            pause = RESTART_BACKOFF[min(attempt, len(RESTART_BACKOFF) - 1)]
            log.warning(
                "etcd exited unexpectedly with code %s; restarting in %.0fs. Last output:\n%s",
                rc,
                pause,
                proc.log_tail(8),
            )
            await trio.sleep(pause)
            async with self._lock:
                if self._proc is not proc or self.state != state:
                    return
                try:
                    await self._start_etcd(state)
                except EtcdError as e:
                    log.error("cannot restart etcd: %s", e)
                    attempt += 1
                    continue
                return

    async def _stop_etcd(self, grace: float | None = None) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            rc = await proc.stop() if grace is None else await proc.stop(grace)
            log.info("stopped etcd pid %d (exit code %d)", proc.pid, rc)

    def _issue_certs(self, cluster_token: ClusterToken) -> EtcdNodeTls | None:
        """Leaf certificates are reissued on every etcd start, so none is ever served expired.
        Blocking (key generation, fsyncs): run it in a worker thread."""
        if self.config.etcd_insecure:
            return None
        assert self.config.pki_dir is not None
        return issue_etcd_node_certs(
            self.config.pki_dir,
            self.layout.pki(cluster_token),
            self.peer_id,
            self.me.peer_urls,
            (*self.me.client_urls, *self.me.quarantined_client_urls),
            self.config.address,
            self.config.cert_duration,
        )

    async def renew_certs(self, every: float) -> None:
        """Reissue leaf certificates in place once a third of their lifetime is left; etcd
        reads them for new connections (a restart, the next time etcd starts, covers the rest)."""
        while True:
            await trio.sleep(every)
            state = self.state
            if self.config.etcd_insecure or state is None or self.config.pki_dir is None:
                continue
            out = self.layout.pki(state.cluster.cluster_token)
            urls = (*self.me.client_urls, *self.me.quarantined_client_urls)
            reason = await trio.to_thread.run_sync(
                needs_reissue, self.config.pki_dir, out, self.peer_id, self.me.peer_urls, urls, self.config.address
            )
            if reason:
                log.info("reissuing etcd certificates: %s", reason)
                await trio.to_thread.run_sync(self._issue_certs, state.cluster.cluster_token)

    def etcd_running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def _apply(self, state: EtcdState | None, *, stop_grace: float | None = None) -> None:
        """Record the new state, then restart etcd to match it.

        Shielded: a caller cancelled half way (e.g. the leader's connection dropped) must not
        leave an etcd running that this service no longer tracks."""
        with trio.CancelScope(shield=True):
            await self._stop_etcd(stop_grace)
            await trio.to_thread.run_sync(write_state, self.layout.state, state)
            self.state = state
            if state is not None:
                self.state_problem = None
                await self._start_etcd(state)

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
        )

    async def join_cluster(self, call: JoinClusterArgs) -> None:
        async with self._lock:
            if call.phase is JoinPhase.CANCEL_PREPARE:
                if self._prepared and self._prepared[0] == call.cluster_token:
                    self._prepared = None
                return
            if self.state is not None:
                if self.state.cluster.cluster_token == call.cluster_token:
                    return  # a repeated call: already done
                raise RpcError(
                    "busy", f"this node is already a member of cluster {self.state.cluster.cluster_token}"
                )
            if call.phase is JoinPhase.PREPARE:
                self._prepared = (call.cluster_token, trio.current_time() + PREPARE_TTL)
                log.info("prepared to join cluster %s", call.cluster_token)
                return
            if (
                not self._prepared
                or self._prepared[0] != call.cluster_token
                or self._prepared[1] < trio.current_time()
            ):
                raise RpcError("not-prepared", f"no current PREPARE for cluster {call.cluster_token}")
            self._prepared = None
            if self.peer_id not in {n.name for n in call.nodes}:
                raise RpcError("bad-request", "this node is not among the cluster's nodes")
            await self.binaries_for(call.etcd_version)  # refuse before writing any state
            self.layout.move_to_trash(call.cluster_token)
            state = EtcdState(
                cluster=EtcdCluster(cluster_token=call.cluster_token, nodes=call.nodes),
                etcd_version=call.etcd_version,
                quarantined=call.quarantined,
                new_cluster=call.phase is JoinPhase.INITIAL_CLUSTER,
            )
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
            if state == self.state and self.etcd_running():
                return
            log.info(
                "reconfigure: etcd %s, %s",
                state.etcd_version,
                "quarantined" if state.quarantined else "serving clients",
            )
            await self._apply(state.with_changes(new_cluster=False))

    async def restore_backup(self, call: DoRestoreArgs) -> None:
        """Become a quarantined member of a new cluster whose data is backup `call.backup`."""
        async with self._lock:
            if self.peer_id not in {n.name for n in call.nodes}:
                raise RpcError("bad-request", "this node is not among the restored cluster's nodes")
            binaries = await self.binaries_for(call.etcd_version)
            scratch = self.layout.scratch() / f"restore-{call.cluster_token}"
            shutil.rmtree(scratch, ignore_errors=True)
            try:
                # Fetch and verify before touching anything that runs.
                fetched = await fetch_backup(open_store(self.config.backup_store, ca_file=self.config.store_ca_file), call.backup, scratch)
                old = self.state
                await self._apply(None, stop_grace=ABANDON_GRACE)
                if old is not None:
                    self.layout.move_to_trash(old.cluster.cluster_token)
                self.layout.move_to_trash(call.cluster_token)
                await restore_data_dir(
                    binaries,
                    fetched,
                    self.layout.etcd_data(call.cluster_token),
                    self.peer_id,
                    {n.name: n.peer_urls for n in call.nodes},
                    call.cluster_token,
                    self.me.peer_urls,
                )
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            state = EtcdState(
                cluster=EtcdCluster(cluster_token=call.cluster_token, nodes=call.nodes),
                etcd_version=call.etcd_version,
                quarantined=True,
            )
            log.info(
                "restored backup %s as a member of new cluster %s (quarantined)",
                call.backup,
                call.cluster_token,
            )
            await self._apply(state)

    async def stop_etcd(self) -> None:
        """Leave the cluster for good: stop etcd, move its data to the trash, forget the state."""
        async with self._lock:
            old = self.state
            await self._apply(None, stop_grace=ABANDON_GRACE)
            if old is not None:
                self.layout.move_to_trash(old.cluster.cluster_token)
                log.info("left cluster %s; this node is empty now", old.cluster.cluster_token)
