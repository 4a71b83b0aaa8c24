"""Errors of taking and restoring backups."""

from etcdmgr.model.errors import EtcdmgrError


class BackupError(EtcdmgrError):
    """A backup cannot be used: missing or unreadable meta, a file missing, a checksum mismatch,
    a corrupt gzip or snapshot. The message names the backup and the cause."""


class NotEnoughSpace(BackupError):
    """The scratch room a backup or restore needs is not free (the message says how much is missing)."""
