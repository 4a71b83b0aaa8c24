"""The daemon's operations side: the metrics and health port (--etcd-manager-metrics-port), systemd
readiness and watchdog (NOTIFY_SOCKET), and the certificates' expiry for the metrics.

All of it runs on the daemon's own event loop. The watchdog is pinged from here, not from the
control loop, so a control cycle stuck on a hung store does not get the daemon and its etcd
restarted; a peer API that stops answering does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import trio

from etcdmgr.daemon.config import DaemonConfig
from etcdmgr.daemon.health import Health
from etcdmgr.daemon.manager_certs import ManagerCerts
from etcdmgr.model import EtcdmgrError
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.service import NodeService
from etcdmgr.ops import metrics
from etcdmgr.ops.http import Response, serve_http, text
from etcdmgr.ops.systemd import notify, under_systemd, watchdog_seconds
from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.election import Candidacy
from etcdmgr.peer.rpc_client import PeerCaller
from etcdmgr.pki.ca import ALL_CAS, ca_paths
from etcdmgr.pki.etcd_tls import node_tls_paths
from etcdmgr.pki.expiry import expiries

log = logging.getLogger(__name__)

CERT_REFRESH = 10.0  # seconds between reads of the certificates' expiry (a few small files)
STATUS_EVERY = 1.0  # seconds between checks of what systemd's STATUS= line says


@dataclass(frozen=True)
class Daemon:
    """The parts of one running daemon that the operations side reads."""

    config: DaemonConfig
    layout: DataLayout
    node: NodeService
    directory: PeerDirectory
    candidacy: Candidacy
    caller: PeerCaller
    certs: ManagerCerts

    def leading(self) -> bool:
        return self.candidacy.term is not None


async def run_operations(d: Daemon, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Start the metrics port (when asked for) and the systemd notifications (when run by it)."""
    health = Health(d.node, d.directory, d.caller, lambda: d.certs.etcd_tls)
    async with trio.open_nursery() as nursery:
        if d.config.metrics_port is not None:
            await nursery.start(_metrics_port, d, health, d.config.metrics_port)
        if under_systemd():
            nursery.start_soon(_systemd, d, health)
        task_status.started()


async def _metrics_port(
    d: Daemon, health: Health, port: int, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    # Imported here: without the port, prometheus_client is never loaded.
    from etcdmgr.ops.prometheus import NodeNow, PrometheusRecorder

    def node_now() -> NodeNow:
        healthy = len(d.directory.healthy()) - 1  # without this node
        state = d.node.state
        return NodeNow(
            leading=d.leading(),
            healthy_peers=healthy,
            unhealthy_peers=len(d.directory.records) - healthy,
            quarantined=state is not None and state.quarantined,
        )

    recorder = PrometheusRecorder(node_now, d.config.backup_interval)
    metrics.install(recorder)

    async def get_metrics(headers: Mapping[str, str]) -> Response:
        body, content_type = recorder.exposition(headers.get("accept", ""))
        return Response(200, body, content_type)

    async def healthz(headers: Mapping[str, str]) -> Response:
        problem = await health.not_alive()
        return text(200, "ok") if problem is None else text(503, problem)

    async def readyz(headers: Mapping[str, str]) -> Response:
        problem = await health.not_ready()
        running = recorder.cycle_running_for()
        if not d.leading():
            detail = "control loop: not leading"
        elif running is None:
            detail = "control loop: leading, between cycles"
        else:
            detail = f"control loop: leading, cycle running for {running:.0f}s"
        return text(200, f"ok\n{detail}") if problem is None else text(503, f"{problem}\n{detail}")

    host = d.config.metrics_address or d.config.address
    routes = {"/metrics": get_metrics, "/healthz": healthz, "/readyz": readyz}
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(serve_http, routes, host, port)
        except OSError as e:
            raise EtcdmgrError(f"cannot serve metrics on {host}:{port}: {e.strerror or e}") from None
        task_status.started()
        while True:
            files = _cert_files(d)
            recorder.set_cert_expiry(await trio.to_thread.run_sync(expiries, files))
            await trio.sleep(CERT_REFRESH)


def _cert_files(d: Daemon) -> dict[str, Path]:
    """The certificates this daemon uses, by the name the metrics give them."""
    files: dict[str, Path] = {}
    if d.config.pki_dir is not None:
        files.update({name: ca_paths(d.config.pki_dir, name)[0] for name in ALL_CAS})
    if d.certs.peer_files is not None:
        files["peer-api-server"] = d.certs.peer_files.server_cert
        files["peer-api-client"] = d.certs.peer_files.client_cert
    if d.certs.etcd_tls is not None and d.certs.etcd_tls.cert is not None:
        files["etcd-manager-client"] = d.certs.etcd_tls.cert
    state = d.node.state
    if state is not None and not d.config.etcd_insecure:
        etcd = node_tls_paths(d.layout.pki(state.cluster.cluster_token))
        files["etcd-peer"] = etcd.peer.cert
        files["etcd-server"] = etcd.client.cert
    return files


async def _systemd(d: Daemon, health: Health) -> None:
    """READY=1 once the peer API answers and the member is up or idle; then STATUS= on change
    and WATCHDOG=1 each half watchdog period while the peer API answers."""
    # Neither has an event to wait for: ask again shortly.
    while await health.not_alive() is not None or health.member_state() == "stopped":  # noqa: ASYNC110
        await trio.sleep(0.5)
    status = _status(d, health)
    notify(f"READY=1\nSTATUS={status}")
    log.info("told systemd: ready (%s)", status)
    watchdog = watchdog_seconds()
    next_ping = trio.current_time()
    while True:
        if watchdog is not None and trio.current_time() >= next_ping:
            problem = await health.not_alive()
            if problem is None:
                notify("WATCHDOG=1")
            else:
                log.warning("not pinging the systemd watchdog: %s", problem)
            next_ping = trio.current_time() + watchdog / 2
        if (now := _status(d, health)) != status:
            status = now
            notify(f"STATUS={status}")
        await trio.sleep(min(STATUS_EVERY, watchdog / 2) if watchdog is not None else STATUS_EVERY)


def _status(d: Daemon, health: Health) -> str:
    role = "leader" if d.leading() else "follower"
    return f"{role}; etcd member {health.member_state()}; {len(d.directory.healthy()) - 1} healthy peers"
