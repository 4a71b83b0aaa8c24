"""Start one node: node service (etcd child), peer server, discovery, gossip and controller."""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

import trio

from etcdmgr import __version__
from etcdmgr.controller.act import Actor
from etcdmgr.controller.loop import Controller
from etcdmgr.controller.observe import Observer
from etcdmgr.daemon.config import DaemonConfig
from etcdmgr.daemon.handlers import make_handler
from etcdmgr.daemon.manager_certs import ManagerCerts
from etcdmgr.discovery import Discovery, open_discovery
from etcdmgr.model import EtcdmgrError, PeerEndpoint
from etcdmgr.node.hosts_file import member_host_name, update_hosts_file
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.service import NodeService
from etcdmgr.peer.directory import PeerDirectory, Source
from etcdmgr.peer.election import Candidacy, Follower
from etcdmgr.peer.gossip import gossip_loop
from etcdmgr.peer.node_api import NodeApi
from etcdmgr.peer.rpc_client import PeerCaller
from etcdmgr.peer.transport import Plaintext, open_peer_client, serve_peers
from etcdmgr.pki import loose_keys
from etcdmgr.store import BackupStore, open_store
from etcdmgr.store.retention import retention_from_env

log = logging.getLogger("etcdmgr")


def setup_logging() -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


async def _discover(discovery: Discovery, directory: PeerDirectory, published: bool) -> bool:
    """One discovery round; returns whether our own record is published."""
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
    discovery: Discovery,
    directory: PeerDirectory,
    interval: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    published = await _discover(discovery, directory, False)
    task_status.started()
    while True:
        await trio.sleep(interval)
        published = await _discover(discovery, directory, published)


async def _hosts_loop(path: Path, directory: PeerDirectory, config: DaemonConfig) -> None:
    """Keep every verified node's name (peer id + DNS suffix) resolvable in the hosts file's
    managed block: this node pinged each itself at that address, so no leader is needed for it
    and no third party can put a name there."""
    while True:
        entries = {
            member_host_name(pid, config.dns_suffix): [e.ip for e in endpoints]
            for pid, endpoints in directory.verified().items()
        }
        try:
            if await update_hosts_file(path, entries, cluster_name=config.cluster_name):
                log.info("updated %d host entries in %s", len(entries), path)
        except (OSError, ValueError) as e:
            log.warning("cannot update hosts file %s: %s", path, e)
        await directory.changed.wait()


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
    )


async def _serve(config: DaemonConfig, store: BackupStore | None) -> None:
    layout = DataLayout(config.data_dir)
    layout.root.mkdir(parents=True, exist_ok=True)
    peer_id = await trio.to_thread.run_sync(layout.peer_id)
    config = _with_names(config, peer_id)
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
    key_dirs = [d for d in (config.pki_dir, layout.root / "pki") if d is not None]
    for finding in await trio.to_thread.run_sync(loose_keys, key_dirs):
        log.warning("%s: group or others can reach it (chmod it)", finding)
    # Key generation takes a while on a busy host: never on the event loop.
    certs = await trio.to_thread.run_sync(ManagerCerts, config, layout, peer_id)
    me = PeerEndpoint(config.address, config.peer_port)
    directory = PeerDirectory(peer_id, (me,), config.peer_timeout.total_seconds())
    follower = Follower()
    node = NodeService(config.node_config(), layout, peer_id)
    discovery = open_discovery(
        config.discovery_store, config.store_timeout.total_seconds(), config.store_ca_file
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        renew_every = min(60.0, config.cert_duration.total_seconds() / 10)
        nursery.start_soon(node.renew_certs, renew_every)
        nursery.start_soon(certs.renew, renew_every)
        handler = make_handler(config.cluster_name, directory, follower, node)
        await nursery.start(
            partial(
                serve_peers, handler, config.address, config.peer_port, certs.server_ctx, plaintext=plaintext
            )
        )
        async with open_peer_client(
            peer_id, config.cluster_name, certs.client_ctx, plaintext=plaintext, local_address=config.address
        ) as client:
            caller = PeerCaller(client, directory)
            await nursery.start(
                _discovery_loop, discovery, directory, config.discovery_poll_interval.total_seconds()
            )
            await nursery.start(gossip_loop, directory, caller, config.ping_interval.total_seconds())
            if config.hosts_file is not None:
                nursery.start_soon(_hosts_loop, config.hosts_file, directory, config)
            if store is None:
                log.error("no usable backup store: this node serves its peers but will never lead")
                await trio.sleep_forever()
            nursery.start_soon(_check_store, store)
            api = NodeApi(caller)
            controller = Controller(
                me=peer_id,
                directory=directory,
                candidacy=Candidacy(peer_id),
                caller=caller,
                observer=Observer(
                    api,
                    store,
                    peer_id,
                    config.replace_after.total_seconds(),
                    config.backup_interval,
                    certs.etcd_tls,
                ),
                actor=Actor(
                    peer_id, api, store, layout.scratch(), retention_from_env(os.environ), certs.etcd_tls
                ),
                store=store,
                bin_dirs=node.bin_dirs,
                cycle_interval=config.cycle_interval.total_seconds(),
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
    setup_logging()
    raise_open_file_limit()
    try:
        trio.run(_main, config)
    except EtcdmgrError as e:
        log.error("%s", e)
        return 1
    return 0
