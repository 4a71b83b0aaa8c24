"""The daemon's settings, after flags are parsed and URLs expanded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from etcdmgr.model.ids import ClusterName
from etcdmgr.node.config import NodeConfig
from etcdmgr.peer.streams import Plaintext, is_loopback


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
    discovery_store: str
    data_dir: Path
    peer_port: int = 8000
    pki_dir: Path | None = None
    peer_tls: PeerTls = PeerTls.ON
    insecure_allow_network: bool = False
    etcd_insecure: bool = False
    etcd_bin_dirs: tuple[Path, ...] = ()
    backup_interval: timedelta = timedelta(minutes=15)
    discovery_poll_interval: timedelta = timedelta(seconds=60)
    cycle_interval: timedelta = timedelta(seconds=10)
    ping_interval: timedelta = timedelta(seconds=1)
    peer_timeout: timedelta = timedelta(seconds=4)
    replace_after: timedelta = timedelta(seconds=60)
    store_timeout: timedelta = timedelta(seconds=10)
    store_ca_file: Path | None = None
    dns_suffix: str = ""
    hosts_file: Path | None = None
    cert_duration: timedelta = timedelta(days=730)
    etcd_env: dict[str, str] = field(default_factory=dict)

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
            backup_store=self.backup_store,
            store_ca_file=self.store_ca_file,
            pki_dir=self.pki_dir,
            etcd_insecure=self.etcd_insecure,
            etcd_bin_dirs=self.etcd_bin_dirs,
            cert_duration=self.cert_duration,
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
