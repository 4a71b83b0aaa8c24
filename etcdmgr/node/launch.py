"""How this node's etcd is started, derived from its state file and flags. Pure."""

from __future__ import annotations

from etcdmgr.etcd.launch import EtcdLaunch
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model import EtcdNode, EtcdState
from etcdmgr.model.ids import PeerId
from etcdmgr.node.config import NodeConfig
from etcdmgr.node.layout import DataLayout
from etcdmgr.pki.etcd_tls import EtcdNodeTls


def own_node(config: NodeConfig, peer_id: PeerId) -> EtcdNode:
    """The member this node would be: named by its peer id, with its configured URLs."""
    return EtcdNode(
        name=peer_id,
        peer_urls=config.peer_urls,
        client_urls=config.client_urls,
        quarantined_client_urls=config.quarantine_client_urls,
        tls_enabled=not config.etcd_insecure,
    )


def client_urls(node: EtcdNode, quarantined: bool) -> tuple[str, ...]:
    return node.quarantined_client_urls if quarantined else node.client_urls


def build_launch(
    config: NodeConfig,
    layout: DataLayout,
    me: EtcdNode,
    state: EtcdState,
    binaries: EtcdBinaries,
    *,
    force_new_cluster: bool = False,
    tls: EtcdNodeTls | None = None,
) -> EtcdLaunch:
    urls = client_urls(me, state.quarantined)
    return EtcdLaunch(
        name=me.name,
        binaries=binaries,
        data_dir=layout.etcd_data(state.cluster.cluster_token),
        listen_peer_urls=config.listen_urls(me.peer_urls),
        advertise_peer_urls=me.peer_urls,
        listen_client_urls=config.listen_urls(urls),
        advertise_client_urls=urls,
        initial_cluster={n.name: n.peer_urls for n in state.cluster.nodes},
        initial_cluster_token=state.cluster.cluster_token,
        initial_cluster_state="new" if state.new_cluster else "existing",
        force_new_cluster=force_new_cluster,
        peer_tls=tls.peer if tls else None,
        client_tls=tls.client if tls else None,
        listen_metrics_urls=config.listen_metrics_urls,
    )
