"""Discovery records: one per node, as etcd-manager's VFS discovery writes them.

What Go's encoding/json makes of the record: compact, e.g.
{"id":"<id>","endpoints":[{"ip":"127.0.0.1","port":8000}]}, no trailing newline. Readers key
records by name (file or object), as the original does.
"""

from __future__ import annotations

from etcdmgr.model.errors import EtcdmgrError
from etcdmgr.model.fields import as_dict, listed, nested
from etcdmgr.model.ids import PeerId
from etcdmgr.model.peer import PeerEndpoint
from etcdmgr.store.codec import decode_json, encode_go_json

MAX_RECORD = 64 * 1024  # a record is about 100 bytes; anything this big is not one


class DiscoveryError(EtcdmgrError):
    """The discovery store cannot be used at all."""


def record_bytes(peer_id: PeerId, endpoints: list[PeerEndpoint]) -> bytes:
    return encode_go_json({"id": peer_id, "endpoints": [e.to_json() for e in endpoints]})


def record_endpoints(data: bytes, where: str) -> list[PeerEndpoint]:
    """The endpoints of one record (InvalidData naming ``where`` when it is none)."""
    what = "discovery record"
    return list(
        listed(as_dict(decode_json(data, where), what), "endpoints", nested(PeerEndpoint.from_json), what)
    )
