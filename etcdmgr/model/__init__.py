"""Plain data shared by every layer: specs, node state, commands, backups and peers.

Each type has a JSON form (camelCase, as etcd-manager writes it to the backup store) via
``to_json``/``from_json`` and a msgpack-friendly form (plain dicts) via ``to_wire``/``from_wire``.
"""

from etcdmgr.model.cluster import ClusterSpec, EtcdCluster, EtcdNode, EtcdState
from etcdmgr.model.errors import EtcdmgrError, InvalidData
from etcdmgr.model.peer import PeerEndpoint, PeerInfo

__all__ = [
    "ClusterSpec",
    "EtcdCluster",
    "EtcdNode",
    "EtcdState",
    "EtcdmgrError",
    "InvalidData",
    "PeerEndpoint",
    "PeerInfo",
]
