"""The daemon's settings, after flags are parsed and URLs expanded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from etcdmgr.node.config import NodeConfig


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
    dns_suffix: str = ""
    hosts_file: Path | None = None
    cert_duration: timedelta = timedelta(days=730)
    etcd_env: dict[str, str] = field(default_factory=dict)

    def node_config(self) -> NodeConfig:
        """The part of the settings the node service uses."""
        return NodeConfig(
            address=self.address,
            etcd_address=self.etcd_address,
            peer_urls=self.peer_urls,
            client_urls=self.client_urls,
            quarantine_client_urls=self.quarantine_client_urls,
            backup_store=self.backup_store,
            pki_dir=self.pki_dir,
            etcd_insecure=self.etcd_insecure,
            etcd_bin_dirs=self.etcd_bin_dirs,
            cert_duration=self.cert_duration,
        )


def expand_url(url: str, address: str) -> str:
    """`__address__` becomes the node's address (`__name__` waits for the peer id: daemon/run.py)."""
    return url.replace("__address__", address)
