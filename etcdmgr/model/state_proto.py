"""EtcdState in etcd-manager's own form: the protobuf message `etcd.EtcdState` of its
pkg/apis/etcd/etcdapi.proto, as its `state` file holds it (proto.Marshal, no framing).

    EtcdState   new_cluster=1 bool, cluster=2 EtcdCluster, etcd_version=3 string, quarantined=4 bool
    EtcdCluster desired_cluster_size=1 int32 (never set by the original), cluster_token=5 string,
                nodes=7 repeated EtcdNode
    EtcdNode    name=1 string, peer_urls=2, client_urls=3, quarantined_client_urls=4 repeated
                string, tls_enabled=5 bool

Reading is strict: a known field of the wrong wire type, a singular field twice, a bool other
than 0 or 1 and a string that is not UTF-8 are refused; every value then goes through the same
parsers as the JSON form. Fields this reader does not know are skipped and named (`unknown`), as
they cannot be written back. Writing follows proto.Marshal: fields in number order, values
equal to their default left out; so an unchanged state encodes to the bytes the original wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from etcdmgr.model.cluster import EtcdCluster, EtcdNode, EtcdState, check_unique_names
from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import parse_cluster_token, parse_peer_id
from etcdmgr.model.values import parse_etcd_version, parse_url
from etcdmgr.util.protowire import LEN, VARINT, WireError, iter_fields, len_field, varint_field

T = TypeVar("T")

# number -> (name, wire type, repeated), per message
_STATE = {
    1: ("new_cluster", VARINT, False),
    2: ("cluster", LEN, False),
    3: ("etcd_version", LEN, False),
    4: ("quarantined", VARINT, False),
}
_CLUSTER = {
    1: ("desired_cluster_size", VARINT, False),
    5: ("cluster_token", LEN, False),
    7: ("nodes", LEN, True),
}
_NODE = {
    1: ("name", LEN, False),
    2: ("peer_urls", LEN, True),
    3: ("client_urls", LEN, True),
    4: ("quarantined_client_urls", LEN, True),
    5: ("tls_enabled", VARINT, False),
}


@dataclass
class _Message:
    """One message's known fields by name (a list each), for the mapping below."""

    what: str
    values: dict[str, list[int | bytes]] = field(default_factory=dict)

    def ints(self, name: str) -> list[int]:
        return [v for v in self.values.get(name, []) if isinstance(v, int)]

    def blobs(self, name: str) -> list[bytes]:
        return [v for v in self.values.get(name, []) if isinstance(v, bytes)]

    def boolean(self, name: str) -> bool:
        for v in self.ints(name):
            if v not in (0, 1):
                raise InvalidData(f"{self.what}: field {name!r} is {v}, not a bool")
            return v == 1
        return False

    def text(self, name: str) -> str | None:
        for v in self.blobs(name):
            return _utf8(v, f"{self.what}.{name}")
        return None

    def texts(self, name: str, parse: Callable[[object, str], T]) -> tuple[T, ...]:
        where = f"{self.what}.{name}"
        return tuple(parse(_utf8(v, where), where) for v in self.blobs(name))


def _utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidData(f"{where} is not UTF-8") from None


def _read(data: bytes, what: str, schema: dict[int, tuple[str, int, bool]], unknown: list[str]) -> _Message:
    msg = _Message(what)
    try:
        for f in iter_fields(data):
            known = schema.get(f.number)
            if known is None:
                unknown.append(f"{what} field {f.number}")
                continue
            name, wire_type, repeated = known
            if f.wire_type != wire_type:
                raise InvalidData(f"{what}: field {name!r} has wire type {f.wire_type}, expected {wire_type}")
            if name in msg.values and not repeated:
                raise InvalidData(f"{what}: field {name!r} appears twice")
            msg.values.setdefault(name, []).append(f.value)
    except WireError as e:
        raise InvalidData(f"{what}: {e}") from None
    return msg


def _node(data: bytes, unknown: list[str]) -> EtcdNode:
    m = _read(data, "EtcdNode", _NODE, unknown)
    return EtcdNode(
        name=parse_peer_id(m.text("name") or "", "EtcdNode.name"),
        peer_urls=m.texts("peer_urls", parse_url),
        client_urls=m.texts("client_urls", parse_url),
        quarantined_client_urls=m.texts("quarantined_client_urls", parse_url),
        tls_enabled=m.boolean("tls_enabled"),
    )


def _cluster(data: bytes, unknown: list[str]) -> EtcdCluster:
    m = _read(data, "EtcdCluster", _CLUSTER, unknown)
    if any(m.ints("desired_cluster_size")):
        unknown.append("EtcdCluster field 1 (desired_cluster_size)")
    nodes = tuple(_node(raw, unknown) for raw in m.blobs("nodes"))
    check_unique_names(nodes, "EtcdCluster.nodes")
    return EtcdCluster(
        cluster_token=parse_cluster_token(m.text("cluster_token") or "", "EtcdCluster.cluster_token"),
        nodes=nodes,
    )


def state_from_protobuf(data: bytes) -> tuple[EtcdState | None, list[str]]:
    """The state in `data` (None when it names no cluster: the original writes an empty message
    when its member is stopped), and the fields skipped because this reader does not know them.
    Raises InvalidData."""
    unknown: list[str] = []
    m = _read(data, "EtcdState", _STATE, unknown)
    quarantined, new_cluster = m.boolean("quarantined"), m.boolean("new_cluster")
    clusters = m.blobs("cluster")
    if not clusters:
        return None, unknown
    state = EtcdState(
        cluster=_cluster(clusters[0], unknown),
        etcd_version=parse_etcd_version(m.text("etcd_version") or "", "EtcdState.etcd_version"),
        quarantined=quarantined,
        new_cluster=new_cluster,
    )
    return state, unknown


def _bool(number: int, value: bool) -> bytes:
    return varint_field(number, 1) if value else b""


def _text(number: int, value: str) -> bytes:
    return len_field(number, value.encode()) if value else b""


def _texts(number: int, values: tuple[str, ...]) -> bytes:
    # Repeated strings keep empty ones: presence is the element itself.
    return b"".join(len_field(number, v.encode()) for v in values)


def _node_bytes(node: EtcdNode) -> bytes:
    return b"".join(
        (
            _text(1, node.name),
            _texts(2, node.peer_urls),
            _texts(3, node.client_urls),
            _texts(4, node.quarantined_client_urls),
            _bool(5, node.tls_enabled),
        )
    )


def state_to_protobuf(state: EtcdState | None) -> bytes:
    """The bytes proto.Marshal gives for this state; None is the empty message (no cluster)."""
    if state is None:
        return b""
    cluster = _text(5, state.cluster.cluster_token) + b"".join(
        len_field(7, _node_bytes(n)) for n in state.cluster.nodes
    )
    return b"".join(
        (
            _bool(1, state.new_cluster),
            len_field(2, cluster),
            _text(3, state.etcd_version),
            _bool(4, state.quarantined),
        )
    )
