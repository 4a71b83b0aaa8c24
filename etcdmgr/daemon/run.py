"""Start one node: node service (etcd child), peer server, discovery, gossip and controller."""

from __future__ import annotations

import logging
import resource
import signal
from dataclasses import replace
from functools import partial
from pathlib import Path

import trio

from etcdmgr import __version__
from etcdmgr.controller.act import Actor
from etcdmgr.controller.backoff import BackupAttempts, Promotions
from etcdmgr.controller.drills import Drills
from etcdmgr.controller.loop import Controller
from etcdmgr.controller.observe import Observer
from etcdmgr.controller.status import StatusWriter
from etcdmgr.daemon.cert_watch import watch_certificates
from etcdmgr.daemon.config import DaemonConfig
from etcdmgr.daemon.handlers import make_handler
from etcdmgr.daemon.manager_certs import ManagerCerts
from etcdmgr.daemon.operations import Daemon, run_operations
from etcdmgr.discovery import Discovery, open_discovery
from etcdmgr.discovery.external_volumes import wait_for_volume
from etcdmgr.discovery.seeds import SeedSource
from etcdmgr.etcd.launch import MANAGED_ENV, unsafe_parent_env
from etcdmgr.model import EtcdmgrError, PeerEndpoint
from etcdmgr.node.drill import DrillRunner
from etcdmgr.node.hosts_file import member_host_name, update_hosts_file
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.service import NodeService
from etcdmgr.ops.logs import set_log_context, setup_logging
from etcdmgr.ops.systemd import adopt_environment, notify
from etcdmgr.peer.directory import PeerDirectory, Source
from etcdmgr.peer.election import Candidacy, Follower
from etcdmgr.peer.gossip import gossip_loop
from etcdmgr.peer.node_api import NodeApi
from etcdmgr.peer.progress import Progress
from etcdmgr.peer.rpc_client import PeerCaller
from etcdmgr.peer.transport import Plaintext, open_peer_client, serve_peers
from etcdmgr.pki import loose_keys
from etcdmgr.pki.expiry import expiries
from etcdmgr.store import BackupStore, open_store
from etcdmgr.store.static_control import NEW_CLUSTER_MARKER, StaticControl

log = logging.getLogger("etcdmgr")

VOLUME_POLL_INTERVAL = 5.0  # seconds between looks for an external volume folder not there yet


async def _discover(
    discovery: Discovery | None, seeds: SeedSource | None, directory: PeerDirectory, published: bool
) -> bool:
    """One discovery round; returns whether our own record is published."""
    if seeds is not None:
        try:
            directory.set_seeds(await seeds.poll())
        except EtcdmgrError as e:
            log.warning("seeds: %s", e)
    if discovery is None:
        return published
    try:
        if not published:
            # A record at our address under another id is our own former self (a wiped data dir).
            for pid, endpoints in (await discovery.poll()).items():
                if pid != directory.me and set(endpoints) & set(directory.my_endpoints):
                    log.info("removing discovery record %s: it names this node's address", pid)
                    await discovery.withdraw(pid)
            await discovery.publish(directory.me, list(directory.my_endpoints))
            published = True
        for pid, endpoints in (await discovery.poll()).items():
            directory.learn(pid, tuple(endpoints), Source.DISCOVERY)
    except EtcdmgrError as e:
        log.warning("discovery: %s", e)
    return published


async def _discovery_loop(
    discovery: Discovery | None,
    seeds: SeedSource | None,
    directory: PeerDirectory,
    interval: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    published = await _discover(discovery, seeds, directory, False)
    task_status.started()
    while True:
        await trio.sleep(interval)
        published = await _discover(discovery, seeds, directory, published)


def _discovery(config: DaemonConfig) -> tuple[Discovery | None, SeedSource | None]:
    """The discovery store and the seeds this node uses; one log line says which."""
    timeout = config.store_timeout.total_seconds()
    discovery = (
        open_discovery(config.discovery_store, timeout, config.store_ca_file) if config.discovery_store else None
    )
    seeds = None
    if config.peers or config.seeds_dir is not None:
        seeds = SeedSource(config.peers, config.seeds_dir, config.peer_port, timeout)
    ways = [f"pinging {seeds.describe()}"] if seeds else []
    ways += [f"discovery store {discovery.url}"] if discovery else []
    log.info("finding peers by %s", " and by ".join(ways) or "their own pings only")
    return discovery, seeds


async def _hosts_loop(path: Path, directory: PeerDirectory, config: DaemonConfig) -> None:
    """Keep every verified node's name (peer id + DNS suffix) resolvable in the hosts file's
    managed block: this node pinged each itself at that address, so no leader is needed for it
    and no third party can put a name there."""
    while True:
        # Taken before reading the directory: a change while the file is written wakes us again.
        changed = directory.changed
        entries = {
            member_host_name(pid, config.dns_suffix): [e.ip for e in endpoints]
            for pid, endpoints in directory.verified().items()
        }
        try:
            if await update_hosts_file(path, entries, cluster_name=config.cluster_name):
                log.info("updated %d host entries in %s", len(entries), path)
        except (OSError, ValueError) as e:
            log.warning("cannot update hosts file %s: %s", path, e)
        await changed.wait()


async def _check_store(store: BackupStore) -> None:
    """Say at start when the store cannot hold claims (an S3-compatible server that ignores
    If-None-Match): this node will then refuse to create or restore a cluster there."""
    try:
        problem = await store.check_create_if_absent()
    except EtcdmgrError as e:
        log.warning("cannot check whether %s honours create-if-absent writes yet: %s", store.url, e)
        return
    if problem is not None:
        log.error("%s", problem)


def _with_names(config: DaemonConfig, peer_id: str) -> DaemonConfig:
    """Expand __name__ in the URLs now that the member name (the peer id) is known."""

    def expand(urls: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(u.replace("__name__", member_host_name(peer_id, config.dns_suffix)) for u in urls)

    return replace(
        config,
        peer_urls=expand(config.peer_urls),
        client_urls=expand(config.client_urls),
        quarantine_client_urls=expand(config.quarantine_client_urls),
        listen_metrics_urls=expand(config.listen_metrics_urls),
    )


async def _serve(config: DaemonConfig, store: BackupStore | None) -> None:
    given_id = config.peer_id
    if config.external_volumes is not None:
        volume = await wait_for_volume(config.external_volumes, VOLUME_POLL_INTERVAL)
        config = replace(config, data_dir=volume.data_dir)
        given_id = volume.peer_id
    layout = DataLayout(config.data_dir)
    layout.root.mkdir(parents=True, exist_ok=True)
    static = config.static_config
    listed_id = static.id_at(config.address) if static is not None else None
    peer_id = await trio.to_thread.run_sync(layout.peer_id, given_id, listed_id)
    config = _with_names(config, peer_id)
    candidacy = Candidacy(peer_id)
    set_log_context(peer_id, config.cluster_name, lambda: candidacy.term is not None)
    log.info(
        "etcdmgr %s: peer %s, cluster %r, peer API on %s:%d (peer TLS %s)",
        __version__,
        peer_id,
        config.cluster_name,
        config.address,
        config.peer_port,
        config.peer_tls,
    )
    plaintext = config.plaintext_peers()
    if plaintext is Plaintext.ANYWHERE:
        log.warning(
            "--insecure-allow-network: the peer API takes plain websockets from any address; anyone "
            "who reaches %s:%d can act as any peer (lead, stop etcd, restore an old backup)",
            config.address,
            config.peer_port,
        )
    elif config.insecure_allow_network:
        log.warning("--insecure-allow-network has no effect: the peer API speaks mutual TLS only")
    unsafe = [v for v in unsafe_parent_env(config.etcd_env) if v.partition("=")[0] not in MANAGED_ENV]
    if config.allow_unsafe_etcd_env and unsafe:
        log.warning(
            "--allow-unsafe-etcd-env: UNSAFE: etcd gets %s; acknowledged writes or the cluster's "
            "membership may be lost on a crash or a bad change",
            ", ".join(unsafe),
        )
    if config.unused_flags:
        log.info("accepted and not used here: %s", " ".join(config.unused_flags))
    if static is not None and store is not None:
        store = StaticControl(store, static.spec, config.data_dir)
        log.info(
            "--static-config: %d members of etcd %s; a new cluster is created only from a data dir holding %s",
            static.spec.member_count,
            static.spec.etcd_version,
            NEW_CLUSTER_MARKER,
        )
    key_dirs = [d for d in (config.pki_dir, layout.root / "pki") if d is not None]
    for finding in await trio.to_thread.run_sync(loose_keys, key_dirs):
        log.warning("%s: group or others can reach it (chmod it)", finding)
    # Key generation takes a while on a busy host: never on the event loop.
    certs = await trio.to_thread.run_sync(ManagerCerts, config, layout, peer_id)
    me = PeerEndpoint(config.address, config.peer_port)
    progress = Progress(config.leader_stall_timeout.total_seconds(), last_ok=trio.current_time())
    if store is None:
        progress.broken = f"no usable backup store ({config.backup_store})"
    directory = PeerDirectory(peer_id, (me,), config.peer_timeout.total_seconds(), progress=progress)
    follower = Follower()
    node = NodeService(config.node_config(), layout, peer_id, store)
    node.etcd_tls = lambda: certs.etcd_tls
    discovery, seeds = _discovery(config)
    drills = None if store is None else DrillRunner(peer_id, store, layout.scratch(), node.bin_dirs)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        renew_every = min(60.0, config.cert_duration.total_seconds() / 10)
        await nursery.start(watch_certificates, certs, node, renew_every)
        if drills is not None:
            await nursery.start(drills.run)
        handler = make_handler(config.cluster_name, directory, follower, node, drills)
        await nursery.start(
            partial(
                serve_peers, handler, config.address, config.peer_port, certs.server_tls(), plaintext=plaintext
            )
        )
        async with open_peer_client(
            peer_id,
            config.cluster_name,
            certs.client_tls(),
            plaintext=plaintext,
            local_address=config.address,
            on_closed=directory.connection_closed,
        ) as client:
            caller = PeerCaller(client, directory)
            await nursery.start(
                run_operations, Daemon(config, layout, node, directory, candidacy, caller, certs)
            )
            await nursery.start(
                _discovery_loop, discovery, seeds, directory, config.discovery_poll_interval.total_seconds()
            )
            await nursery.start(gossip_loop, directory, caller, config.ping_interval.total_seconds())
            if config.hosts_file is not None:
                nursery.start_soon(_hosts_loop, config.hosts_file, directory, config)
            if store is None:
                log.error("no usable backup store: this node serves its peers but will never lead")
                await trio.sleep_forever()
            nursery.start_soon(_check_store, store)
            api = NodeApi(caller)
            # Failing backups are retried from one cycle interval up to the backup interval.
            attempts = BackupAttempts(
                base=config.cycle_interval.total_seconds(), cap=config.backup_interval.total_seconds()
            )
            # A learner etcd will not promote yet is retried from 1 s up to one cycle interval.
            promotions = Promotions(base=1.0, cap=max(1.0, config.cycle_interval.total_seconds()))
            drill_every = config.backup_drill_interval
            leader_drills = Drills(api, store, peer_id, drill_every.total_seconds() if drill_every else None)
            actor = Actor(
                peer_id,
                api,
                store,
                layout.scratch(),
                config.retention,
                certs.etcd_tls,
                attempts=attempts,
                promotions=promotions,
                etcd_env=config.etcd_env,
                drills=leader_drills,
            )
            await nursery.start(actor.run)
            controller = Controller(
                me=peer_id,
                directory=directory,
                candidacy=candidacy,
                follower=follower,
                caller=caller,
                observer=Observer(
                    api,
                    store,
                    peer_id,
                    config.replace_after.total_seconds(),
                    config.backup_interval,
                    certs.etcd_tls,
                    attempts,
                    promotions,
                ),
                actor=actor,
                store=store,
                bin_dirs=node.bin_dirs,
                cycle_interval=config.cycle_interval.total_seconds(),
                status=StatusWriter(
                    store,
                    peer_id,
                    directory.verified,
                    leader_drills,
                    config.cycle_interval.total_seconds(),
                    lambda: {name: int(end) for name, end in expiries(certs.certificate_files()).items()},
                ),
                # Hear from the peers discovery named before deciding who leads: a node that
                # led alone at start could otherwise create a second cluster.
                startup_grace=2 * config.ping_interval.total_seconds() + 0.5,
            )
            await controller.run()


async def _main(config: DaemonConfig) -> None:
    try:
        store: BackupStore | None = open_store(
            config.backup_store, config.store_timeout.total_seconds(), config.store_ca_file
        )
    except EtcdmgrError as e:
        log.error("backup store %s cannot be used: %s", config.backup_store, e)
        store = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def on_signal() -> None:
                async for signum in signals:
                    log.info("got %s: stopping etcd and exiting", signal.Signals(signum).name)
                    notify("STOPPING=1")
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(on_signal)
            await _serve(config, store)


def raise_open_file_limit() -> None:
    """Soft limit up to the hard one: connections, etcdctl pipes and state writes all need
    descriptors, and the peer API's own caps (peer/limits.py) assume more than 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open file limit from %d to %d: %s", soft, target, e)
            return
        log.info("raised the open file limit from %d to %d", soft, target)


def run_daemon(config: DaemonConfig) -> int:
    setup_logging(config.log_format, config.log_level)
    adopt_environment()  # before etcd starts: it must not inherit NOTIFY_SOCKET
    raise_open_file_limit()
    errors: list[BaseException] = []
    try:
        trio.run(_main, config)
    except* EtcdmgrError as group:  # raised in a task, so wrapped by its nurseries
        errors = _leaves(group)
    for e in errors:
        log.error("%s", e)
    return 1 if errors else 0


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    return [
        leaf for e in group.exceptions for leaf in (_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    ]
