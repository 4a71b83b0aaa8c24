"""The daemon's settings, after flags are parsed and URLs expanded."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from etcdmgr.discovery.external_volumes import ExternalVolumes
from etcdmgr.discovery.seeds import SeedAddress
from etcdmgr.discovery.static_config import StaticConfig
from etcdmgr.model.ids import ClusterName, PeerId
from etcdmgr.node.config import NodeConfig
from etcdmgr.ops.logs import LogFormat
from etcdmgr.peer.streams import Plaintext, is_loopback
from etcdmgr.store.retention import Retention


class PeerTls(StrEnum):
    """How the peer API speaks (--peer-tls; --insecure is OFF)."""

    ON = "on"  # mutual TLS only
    PREFER = "prefer"  # moving to TLS: serve both on one port, call with TLS first
    OFF = "off"  # plain websockets only


@dataclass(frozen=True)
class DaemonConfig:
    cluster_name: ClusterName
    address: str
    etcd_address: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    quarantine_client_urls: tuple[str, ...]
    backup_store: str
    discovery_store: str | None  # None: peers are found by address only
    data_dir: Path
    peer_port: int = 8000
    pki_dir: Path | None = None
    peer_tls: PeerTls = PeerTls.ON
    insecure_allow_network: bool = False
    etcd_insecure: bool = False
    etcd_bin_dirs: tuple[Path, ...] = ()
    backup_interval: timedelta = timedelta(minutes=15)
    backup_drill_interval: timedelta | None = timedelta(hours=1)  # None: no restore drills
    discovery_poll_interval: timedelta = timedelta(seconds=60)
    cycle_interval: timedelta = timedelta(seconds=10)
    ping_interval: timedelta = timedelta(seconds=1)
    peer_timeout: timedelta = timedelta(seconds=4)
    replace_after: timedelta = timedelta(seconds=60)
    store_timeout: timedelta = timedelta(seconds=10)
    leader_stall_timeout: timedelta = timedelta(seconds=60)
    store_ca_file: Path | None = None
    dns_suffix: str = ""
    hosts_file: Path | None = None
    cert_duration: timedelta = timedelta(days=730)
    etcd_env: dict[str, str] = field(default_factory=dict)
    peers: tuple[SeedAddress, ...] = ()  # --peers and the static config's nodes: pinged, id unknown
    seeds_dir: Path | None = None  # a folder whose file names are peer addresses
    static_config: StaticConfig | None = None
    external_volumes: ExternalVolumes | None = None  # --volume-provider=external
    peer_id: PeerId | None = None  # this node's id when given (--peer-id, --static-config)
    listen_metrics_urls: tuple[str, ...] = ()
    retention: Retention = field(default_factory=Retention)
    unused_flags: tuple[str, ...] = ()  # the original's flags given, with nothing to do here
    metrics_port: int | None = None  # --etcd-manager-metrics-port: /metrics, /healthz, /readyz
    metrics_address: str | None = None  # default: address
    log_format: LogFormat = LogFormat.TEXT
    log_level: int = logging.INFO
    allow_unsafe_etcd_env: bool = False  # pass ETCD_* settings that weaken etcd (a warning)

    def plaintext_peers(self) -> Plaintext:
        """With whom the peer API may speak plain websockets."""
        if self.peer_tls is PeerTls.ON:
            return Plaintext.NEVER
        return Plaintext.ANYWHERE if self.insecure_allow_network else Plaintext.LOOPBACK

    def node_config(self) -> NodeConfig:
        """The part of the settings the node service uses."""
        return NodeConfig(
            address=self.address,
            etcd_address=self.etcd_address,
            peer_urls=self.peer_urls,
            client_urls=self.client_urls,
            quarantine_client_urls=self.quarantine_client_urls,
            pki_dir=self.pki_dir,
            etcd_insecure=self.etcd_insecure,
            etcd_bin_dirs=self.etcd_bin_dirs,
            cert_duration=self.cert_duration,
            listen_metrics_urls=self.listen_metrics_urls,
        )


def insecure_address_problem(address: str, peer_tls: PeerTls, allow_network: bool) -> str | None:
    """Why the daemon must not start with this address, or None. Pure.

    A plain-only peer API on a non-loopback address would let anyone who reaches it act as any
    peer. --peer-tls=prefer is fine anywhere: it takes plain websockets only from loopback.
    """
    if peer_tls is not PeerTls.OFF or allow_network or is_loopback(address):
        return None
    return (
        f"--insecure on --address={address}: a plain peer API there would let anyone who reaches it "
        "act as any peer (lead, stop etcd, restore an old backup); use a loopback address "
        "(127.0.0.0/8, ::1), mutual TLS (--pki-dir), or add --insecure-allow-network to accept that"
    )


def expand_url(url: str, address: str) -> str:
    """`__address__` becomes the node's address (`__name__` waits for the peer id: daemon/run.py)."""
    return url.replace("__address__", address)
