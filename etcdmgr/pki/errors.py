"""Errors of the certificate layer."""

from etcdmgr.model.errors import EtcdmgrError


class PkiError(EtcdmgrError):
    """A CA or certificate file is missing, unreadable or inconsistent."""
