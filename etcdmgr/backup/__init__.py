"""Backups and disaster recovery: take a backup into the store, prune old ones, and restore one
into a brand-new cluster (v3 snapshot with revisions kept, plus the v2 keyspace when saved)."""

from etcdmgr.backup.errors import BackupError
from etcdmgr.backup.restore import check_backup, fetch_backup, restore_data_dir, restore_v2
from etcdmgr.backup.retention import Pruner, apply_retention
from etcdmgr.backup.take import BackupResult, saves_v2, take_backup

__all__ = [
    "BackupError",
    "BackupResult",
    "Pruner",
    "apply_retention",
    "check_backup",
    "fetch_backup",
    "restore_data_dir",
    "restore_v2",
    "saves_v2",
    "take_backup",
]
