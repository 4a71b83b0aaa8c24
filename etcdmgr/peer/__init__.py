"""The private API between managers: transport, gossip, leadership.

The transport's public names are re-exported here; see etcdmgr.peer.transport.
"""

from etcdmgr.peer.transport import (
    Handler,
    PeerAuthError,
    PeerClient,
    PeerError,
    PeerUnreachable,
    ProtocolError,
    Request,
    Response,
    RpcError,
    open_peer_client,
    serve_peers,
)

__all__ = [
    "Handler",
    "PeerAuthError",
    "PeerClient",
    "PeerError",
    "PeerUnreachable",
    "ProtocolError",
    "Request",
    "Response",
    "RpcError",
    "open_peer_client",
    "serve_peers",
]
