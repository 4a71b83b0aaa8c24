"""How daemons find each other: a shared folder of one record per node (file:// URLs)."""

from etcdmgr.discovery.file_discovery import DiscoveryError, FileDiscovery

__all__ = ["DiscoveryError", "FileDiscovery"]
