"""How daemons find each other: a shared folder of one record per node (file:// URLs), or
addresses alone (--peers, --static-config, a seeds folder) whose ids are learned by pinging them."""

from etcdmgr.discovery.file_discovery import DiscoveryError, FileDiscovery
from etcdmgr.discovery.seeds import SeedAddress, SeedSource, parse_peers
from etcdmgr.discovery.static_config import StaticConfig, parse_static_config

__all__ = [
    "DiscoveryError",
    "FileDiscovery",
    "SeedAddress",
    "SeedSource",
    "StaticConfig",
    "parse_peers",
    "parse_static_config",
]
