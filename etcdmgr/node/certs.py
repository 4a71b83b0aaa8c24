"""The certificates of this node's etcd: issued at every start, renewed in place while it runs."""

from __future__ import annotations

import logging

import trio

from etcdmgr.model import EtcdNode, EtcdState
from etcdmgr.model.ids import ClusterToken, PeerId
from etcdmgr.node.config import NodeConfig
from etcdmgr.node.layout import DataLayout
from etcdmgr.pki.etcd_tls import EtcdNodeTls, issue_etcd_node_certs, needs_reissue, node_tls_paths

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

    async def check(self, state: EtcdState | None) -> None:
        """Reissue what needs_reissue finds due, in place: a leaf with a third of its lifetime
        left, or whose CA file or key changed (a CA rotation); etcd reads leafs again for new
        connections, but its trusted CAs only when it starts (see trusted_bundles)."""
        if self.config.etcd_insecure or state is None or self.config.pki_dir is None:
            return
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

    def trusted_bundles(self, cluster_token: ClusterToken) -> bytes | None:
        """The CA bundles etcd is given (peer and client port), as they are on disk now; None
        with --etcd-insecure or when unreadable. Blocking: reads two small files."""
        if self.config.etcd_insecure:
            return None
        tls = node_tls_paths(self.layout.pki(cluster_token))
        try:
            return tls.peer.ca.read_bytes() + b"\n" + tls.client.ca.read_bytes()
        except OSError:
            return None
