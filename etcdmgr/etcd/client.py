"""A client for one etcd cluster: etcdctl for the v3 API (etcd/etcdctl.py), HTTP for health and
the v2 keyspace (etcd/http.py)."""

from __future__ import annotations

from collections.abc import Sequence

from etcdmgr.etcd.etcdctl import EtcdctlCalls
from etcdmgr.etcd.http import HttpCalls
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model.tls import ClientTLS

# Default limit per call; a caller's own cancel scope around a call shortens it (see _tool.budget).
DEFAULT_TIMEOUT = 10.0


class EtcdClient(EtcdctlCalls, HttpCalls):
    """Talks to the members at `endpoints` with the etcdctl of `binaries`.

    Every call is bounded: by `timeout` (or a per-call default), or sooner by the caller's own
    deadline; running out raises EtcdTimeout.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        binaries: EtcdBinaries,
        tls: ClientTLS | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        if not endpoints:
            raise ValueError("EtcdClient needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.binaries = binaries
        self.tls = tls
        self.timeout = timeout
