"""How the leader's actions fail."""

from __future__ import annotations

from etcdmgr.model import EtcdmgrError


class ActionFailed(EtcdmgrError):
    """An action could not be carried out; the next cycle plans again from what it sees."""


class BackupFailed(ActionFailed):
    """A backup failed; it is recorded and reported already (controller/backups.py)."""
