"""The daemon's settings, after flags are parsed and URLs expanded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class DaemonConfig:
    cluster_name: str
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
    insecure: bool = False
    etcd_insecure: bool = False
    etcd_bin_dirs: tuple[Path, ...] = ()
    backup_interval: timedelta = timedelta(minutes=15)
    discovery_poll_interval: timedelta = timedelta(seconds=60)
    cycle_interval: timedelta = timedelta(seconds=10)
    ping_interval: timedelta = timedelta(seconds=1)
    peer_timeout: timedelta = timedelta(seconds=4)
    replace_after: timedelta = timedelta(seconds=60)
    store_timeout: timedelta = timedelta(seconds=10)
    dns_suffix: str = ""
    hosts_file: Path | None = None
    cert_duration: timedelta = timedelta(days=730)
    etcd_env: dict[str, str] = field(default_factory=dict)

    def listen_urls(self, urls: tuple[str, ...]) -> tuple[str, ...]:
        """What etcd binds to: the advertised URLs with the host replaced by --etcd-address."""
        return tuple(with_host(u, self.etcd_address) for u in urls)


def expand_url(url: str, address: str) -> str:
    """`__address__` becomes the node's address (`__name__` waits for the peer id: daemon/run.py)."""
    return url.replace("__address__", address)


def with_host(url: str, host: str) -> str:
    parts = urlsplit(url)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
