"""What the node service needs from the daemon's settings (built by the daemon from its flags)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class NodeConfig:
    address: str  # this host's address: named in the member's certificates
    etcd_address: str  # what etcd binds to (the advertised URLs keep their hosts)
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    quarantine_client_urls: tuple[str, ...]
    backup_store: str
    store_ca_file: Path | None = None  # trusted for an object store's endpoint
    pki_dir: Path | None = None
    etcd_insecure: bool = False
    etcd_bin_dirs: tuple[Path, ...] = ()
    cert_duration: timedelta = timedelta(days=730)

    def listen_urls(self, urls: tuple[str, ...]) -> tuple[str, ...]:
        """What etcd binds to: the advertised URLs with the host replaced by the etcd address."""
        return tuple(with_host(u, self.etcd_address) for u in urls)


def with_host(url: str, host: str) -> str:
    parts = urlsplit(url)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
