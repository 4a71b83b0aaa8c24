"""The certificates of this node's etcd: issued at every start, renewed in place while it runs."""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from etcdmgr.model import EtcdNode, EtcdState
from etcdmgr.model.ids import ClusterToken, PeerId
from etcdmgr.node.config import NodeConfig
from etcdmgr.node.layout import DataLayout
from etcdmgr.pki.etcd_tls import EtcdNodeTls, issue_etcd_node_certs, needs_reissue

log = logging.getLogger(__name__)


class NodeCerts:
    def __init__(self, config: NodeConfig, layout: DataLayout, peer_id: PeerId, me: EtcdNode) -> None:
        self.config = config
        self.layout = layout
        self.peer_id = peer_id
        self.me = me

    def _client_urls(self) -> tuple[str, ...]:
        return (*self.me.client_urls, *self.me.quarantined_client_urls)

    def issue(self, cluster_token: ClusterToken) -> EtcdNodeTls | None:
        """Leaf certificates are reissued on every etcd start, so none is ever served expired.
        None with --etcd-insecure. Blocking (key generation, fsyncs): run it in a worker thread."""
        if self.config.etcd_insecure:
            return None
        assert self.config.pki_dir is not None
        return issue_etcd_node_certs(
            self.config.pki_dir,
            self.layout.pki(cluster_token),
            self.peer_id,
            self.me.peer_urls,
            self._client_urls(),
            self.config.address,
            self.config.cert_duration,
        )

    async def renew(self, every: float, current: Callable[[], EtcdState | None]) -> None:
        """Reissue leaf certificates in place once a third of their lifetime is left; etcd
        reads them for new connections (a restart, the next time etcd starts, covers the rest).
        `current` is the node's state at the time of each check."""
        while True:
            await trio.sleep(every)
            state = current()
            if self.config.etcd_insecure or state is None or self.config.pki_dir is None:
                continue
            out = self.layout.pki(state.cluster.cluster_token)
            reason = await trio.to_thread.run_sync(
                needs_reissue,
                self.config.pki_dir,
                out,
                self.peer_id,
                self.me.peer_urls,
                self._client_urls(),
                self.config.address,
            )
            if reason:
                log.info("reissuing etcd certificates: %s", reason)
                await trio.to_thread.run_sync(self.issue, state.cluster.cluster_token)
