"""The peer RPC transport: msgpack frames over mutual-TLS websockets.

Server: `await nursery.start(serve_peers, handler, host, port, ssl_context)` returns the port.
Client: `async with open_peer_client(my_id, cluster_name, ssl_context) as client:
await client.call(endpoint, method, args, expect_peer_id=...)`.
Both take `plaintext=Plaintext...`: with whom plain websockets are allowed (required without TLS).
"""

from etcdmgr.peer.client import PeerClient, open_peer_client
from etcdmgr.peer.codec import Request, Response
from etcdmgr.peer.errors import PeerAuthError, PeerError, PeerUnreachable, ProtocolError, RpcError
from etcdmgr.peer.limits import ConnectionLimits
from etcdmgr.peer.server import Handler, serve_peers
from etcdmgr.peer.streams import Plaintext

__all__ = [
    "ConnectionLimits",
    "Handler",
    "PeerAuthError",
    "PeerClient",
    "PeerError",
    "PeerUnreachable",
    "Plaintext",
    "ProtocolError",
    "Request",
    "Response",
    "RpcError",
    "open_peer_client",
    "serve_peers",
]
