"""The peer RPC transport: msgpack frames over mutual-TLS websockets.

Server: `await nursery.start(serve_peers, handler, host, port, ssl_context)` returns the port.
Client: `async with open_peer_client(my_id, cluster_name, ssl_context) as client:
await client.call(endpoint, method, args, expect_peer_id=...)`.
"""

from etcdmgr.peer.client import PeerClient, open_peer_client
from etcdmgr.peer.codec import Request, Response
from etcdmgr.peer.errors import PeerAuthError, PeerError, PeerUnreachable, ProtocolError, RpcError
from etcdmgr.peer.server import Handler, serve_peers

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
