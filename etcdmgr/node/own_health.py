"""Is this node's own etcd member healthy? Checked with this node's own credentials."""

from __future__ import annotations

from collections.abc import Sequence

from etcdmgr.etcd.http import HttpCalls
from etcdmgr.model.tls import ClientTLS

PROBE_TIMEOUT = 2.0  # seconds for etcd's /health: a GetInfo answer waits for it


class _Probe(HttpCalls):
    def __init__(self, tls: ClientTLS | None) -> None:
        self.endpoints: list[str] = []
        self.tls = tls
        self.timeout = PROBE_TIMEOUT


async def member_healthy(urls: Sequence[str], tls: ClientTLS | None) -> str | None:
    """None when etcd answers healthy at every one of `urls`, else the first URL that does not."""
    probe = _Probe(tls)
    for url in urls:
        if not await probe.endpoint_health(url):
            return url
    return None
