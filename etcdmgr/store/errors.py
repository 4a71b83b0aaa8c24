"""Errors of the backup store layer."""

from etcdmgr.model.errors import EtcdmgrError


class StoreError(EtcdmgrError):
    """The backup store cannot be opened, or an object in it is missing or cannot be written."""
