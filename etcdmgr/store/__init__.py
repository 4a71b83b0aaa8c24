"""The backup store: desired spec, cluster-created marker, queued commands and backups.

Open one with ``open_store(url)``; only file:// is served so far.
"""

from etcdmgr.store.errors import StoreError
from etcdmgr.store.file_store import FileStore
from etcdmgr.store.interface import BackupStore
from etcdmgr.store.urls import open_store

__all__ = ["BackupStore", "FileStore", "StoreError", "open_store"]
