"""The original's `--static-config`: a fixed cluster named on the command line.

    {"etcdVersion": "3.5.21", "nodes": [{"id": "etcd-a", "ip": ["10.0.0.1"]}, ...]}

Read as Go's encoding/json reads it into the original's struct: field names match whatever
their case, unknown fields are ignored. The spec is fixed by it: as many members as nodes, of
that version. Each node's addresses (IPs, or host names as kops writes them) are pinged at the
daemon's peer port, as `--peers` are; the ids are only used to name this host when it is listed
(see ``id_at``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from etcdmgr.discovery.seeds import SeedAddress, parse_seed_address
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import PeerId, parse_peer_id
from etcdmgr.model.values import parse_etcd_version, parse_member_count

FIELD = "--static-config"


@dataclass(frozen=True)
class StaticNode:
    peer_id: PeerId
    addresses: tuple[SeedAddress, ...]


@dataclass(frozen=True)
class StaticConfig:
    spec: ClusterSpec
    nodes: tuple[StaticNode, ...]

    def seeds(self) -> tuple[SeedAddress, ...]:
        return tuple(dict.fromkeys(a for node in self.nodes for a in node.addresses))

    def id_at(self, address: str) -> PeerId | None:
        """The id of the one node listing `address` (an IP literal), else None."""
        ids = [n.peer_id for n in self.nodes if any(a.host == address for a in n.addresses)]
        return ids[0] if len(ids) == 1 else None


def _field(doc: dict[str, Any], name: str) -> Any:
    """Go's encoding/json: an exact match first, else any key equal to `name` ignoring case."""
    if name in doc:
        return doc[name]
    matches = [v for k, v in doc.items() if k.lower() == name.lower()]
    return matches[-1] if matches else None


def _node(value: object, where: str) -> StaticNode:
    if not isinstance(value, dict):
        raise InvalidData(f"{where}: should be an object")
    ips = _field(value, "ip")
    if ips is None:
        ips = []
    if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
        raise InvalidData(f"{where}: field 'ip' should be a list of addresses")
    addresses = tuple(parse_seed_address(ip, f"{where}.ip") for ip in ips)
    if not addresses:
        raise InvalidData(f"{where}: no address in field 'ip'")
    return StaticNode(parse_peer_id(_field(value, "id"), f"{where}.id"), addresses)


def parse_static_config(text: str) -> StaticConfig:
    """Parse the flag's JSON; InvalidData names what is wrong."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise InvalidData(f"{FIELD}: not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise InvalidData(f"{FIELD}: should be a JSON object")
    version = _field(doc, "etcdVersion")
    nodes_doc = _field(doc, "nodes")
    if not isinstance(nodes_doc, list) or not nodes_doc:
        raise InvalidData(f"{FIELD}: field 'nodes' should list the cluster's nodes")
    nodes = tuple(_node(n, f"{FIELD}: nodes[{i}]") for i, n in enumerate(nodes_doc))
    if len({n.peer_id for n in nodes}) != len(nodes):
        raise InvalidData(f"{FIELD}: two nodes share an id")
    version_text = version.lstrip("v") if isinstance(version, str) else version
    spec = ClusterSpec(
        member_count=parse_member_count(len(nodes), f"{FIELD}: number of nodes"),
        etcd_version=parse_etcd_version(version_text, f"{FIELD}: etcdVersion"),
    )
    spec.validate()
    return StaticConfig(spec, nodes)
