"""The daemon's settings, after flags are parsed and URLs expanded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from etcdmgr.model.ids import ClusterName
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
    dns_suffix: str = ""
    hosts_file: Path | None = None
    cert_duration: timedelta = timedelta(days=730)
    etcd_env: dict[str, str] = field(default_factory=dict)

    def plaintext_peers(self) -> Plaintext:
        """With whom the peer API may speak plain websockets."""
        if self.peer_tls is PeerTls.ON:
            return Plaintext.NEVER
        return Plaintext.ANYWHERE if self.insecure_allow_network else Plaintext.LOOPBACK

    def listen_urls(self, urls: tuple[str, ...]) -> tuple[str, ...]:
        """What etcd binds to: the advertised URLs with the host replaced by --etcd-address."""
        return tuple(with_host(u, self.etcd_address) for u in urls)


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


def with_host(url: str, host: str) -> str:
    parts = urlsplit(url)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
