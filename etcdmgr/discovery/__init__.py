"""How daemons find each other: one record per node in a shared folder (file://) or an object
store prefix (s3://, gs://, azureblob://), opened with ``open_discovery(url)``; or addresses
alone (--peers, --static-config, a seeds folder) whose ids are learned by pinging them."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from etcdmgr.discovery.file_discovery import FileDiscovery
from etcdmgr.discovery.records import DiscoveryError
from etcdmgr.discovery.seeds import SeedAddress, SeedSource, parse_peers
from etcdmgr.discovery.static_config import StaticConfig, parse_static_config
from etcdmgr.model.ids import PeerId
from etcdmgr.model.peer import PeerEndpoint
from etcdmgr.store.deadline import DEFAULT_TIMEOUT
from etcdmgr.store.urls import object_store_settings

__all__ = [
    "Discovery",
    "DiscoveryError",
    "FileDiscovery",
    "SeedAddress",
    "SeedSource",
    "StaticConfig",
    "open_discovery",
    "parse_peers",
    "parse_static_config",
]


class Discovery(Protocol):
    url: str

    async def publish(self, peer_id: PeerId, endpoints: list[PeerEndpoint]) -> None: ...

    async def withdraw(self, peer_id: PeerId) -> None: ...

    async def poll(self) -> dict[PeerId, list[PeerEndpoint]]:
        """Peer id -> endpoints of every readable record; DiscoveryError when the store fails."""
        ...


def open_discovery(url: str, timeout: float = DEFAULT_TIMEOUT, ca_file: Path | None = None) -> Discovery:
    """The discovery store at ``url``; raises DiscoveryError for URLs it cannot serve. Object
    stores load their library only here."""
    settings = object_store_settings(url, "discovery store", DiscoveryError, ca_file)
    if settings is None:
        return FileDiscovery(url, timeout)
    from etcdmgr.discovery.object_discovery import ObjectDiscovery

    return ObjectDiscovery(settings, timeout)
