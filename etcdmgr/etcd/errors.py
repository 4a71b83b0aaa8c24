"""Typed errors for everything that runs etcd, etcdctl or etcdutl."""

from __future__ import annotations

from etcdmgr.model.errors import EtcdmgrError


class EtcdError(EtcdmgrError):
    """etcd, etcdctl or etcdutl failed; the message carries the tool's own words."""


class EtcdBinaryMissing(EtcdError):
    """No installed etcd binaries for the wanted version."""


class EtcdUnavailable(EtcdError):
    """No member answered in time (down, no quorum, wrong address or a refused certificate)."""


class EtcdTimeout(EtcdUnavailable):
    """Our own deadline for the call passed before the tool finished."""


class EtcdTransient(EtcdError):
    """etcd refused for now and says why; the same call can succeed after a short wait."""


class EtcdMemberNotFound(EtcdError):
    """The member id is not (or no longer) in the cluster."""


class EtcdProcessExited(EtcdError):
    """The etcd child process exited while we waited for it to serve."""
