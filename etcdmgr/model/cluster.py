"""The desired cluster (ClusterSpec) and what a node runs (EtcdNode, EtcdCluster, EtcdState)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from etcdmgr.model.errors import InvalidData
from etcdmgr.model.fields import as_dict, listed, nested, optional, parse_bool, required
from etcdmgr.model.ids import ClusterToken, PeerId, parse_cluster_token, parse_peer_id
from etcdmgr.model.values import VERSION_RE, EtcdVersion, parse_etcd_version, parse_member_count, parse_url


def parse_version(version: str) -> tuple[int, int, int]:
    """'3.4.23' -> (3, 4, 23); raises InvalidData otherwise."""
    m = VERSION_RE.fullmatch(version.strip().lstrip("v"))
    if not m:
        raise InvalidData(f"etcd version {version!r} is not of the form X.Y.Z")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


@dataclass(frozen=True)
class ClusterSpec:
    """control/etcd-cluster-spec: what the operator asked for."""

    member_count: int
    etcd_version: EtcdVersion

    def to_json(self) -> dict[str, Any]:
        return {"memberCount": self.member_count, "etcdVersion": self.etcd_version}

    @classmethod
    def from_json(cls, data: Any) -> ClusterSpec:
        d = as_dict(data, "cluster spec")
        return cls(
            member_count=required(d, "memberCount", parse_member_count, "cluster spec"),
            etcd_version=required(d, "etcdVersion", parse_etcd_version, "cluster spec"),
        )

    def validate(self) -> None:
        """Raise InvalidData when this spec cannot be carried out by any daemon (specs built in
        code skip from_json's parsing, so the planner relies on this check too)."""
        parse_member_count(self.member_count, "member count")
        major, _, _ = parse_version(self.etcd_version)
        if major < 3:
            raise InvalidData(
                f"etcd {self.etcd_version} is not supported: etcd 2.x binaries cannot be had; "
                "use etcd 3.3 or newer, which still serves the v2 API (--enable-v2)"
            )

    to_wire = to_json
    from_wire = from_json


@dataclass(frozen=True)
class EtcdNode:
    """One member as the managers know it: its name and the URLs it serves."""

    name: PeerId
    peer_urls: tuple[str, ...] = ()
    client_urls: tuple[str, ...] = ()
    quarantined_client_urls: tuple[str, ...] = ()
    tls_enabled: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "peerUrls": list(self.peer_urls),
            "clientUrls": list(self.client_urls),
            "quarantinedClientUrls": list(self.quarantined_client_urls),
            "tlsEnabled": self.tls_enabled,
        }

    @classmethod
    def from_json(cls, data: Any) -> EtcdNode:
        d = as_dict(data, "etcd node")
        return cls(
            name=required(d, "name", parse_peer_id, "etcd node"),
            peer_urls=listed(d, "peerUrls", parse_url, "etcd node"),
            client_urls=listed(d, "clientUrls", parse_url, "etcd node"),
            quarantined_client_urls=listed(d, "quarantinedClientUrls", parse_url, "etcd node"),
            tls_enabled=optional(d, "tlsEnabled", parse_bool, "etcd node") or False,
        )

    to_wire = to_json
    from_wire = from_json


@dataclass(frozen=True)
class EtcdCluster:
    """The founding configuration of one etcd cluster: its token and initial members."""

    cluster_token: ClusterToken
    nodes: tuple[EtcdNode, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"clusterToken": self.cluster_token, "nodes": [n.to_json() for n in self.nodes]}

    @classmethod
    def from_json(cls, data: Any) -> EtcdCluster:
        d = as_dict(data, "etcd cluster")
        return cls(
            cluster_token=required(d, "clusterToken", parse_cluster_token, "etcd cluster"),
            nodes=parse_nodes(d, "nodes", "etcd cluster"),
        )


@dataclass(frozen=True)
class EtcdState:
    """A node's own state file: which cluster it is a member of, on which version, quarantined or not."""

    cluster: EtcdCluster
    etcd_version: EtcdVersion
    quarantined: bool = False
    new_cluster: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        out = {
            "newCluster": self.new_cluster,
            "cluster": self.cluster.to_json(),
            "etcdVersion": self.etcd_version,
            "quarantined": self.quarantined,
        }
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: Any) -> EtcdState:
        d = as_dict(data, "etcd state")
        known = {"newCluster", "cluster", "etcdVersion", "quarantined"}
        return cls(
            cluster=required(d, "cluster", nested(EtcdCluster.from_json), "etcd state"),
            etcd_version=required(d, "etcdVersion", parse_etcd_version, "etcd state"),
            quarantined=optional(d, "quarantined", parse_bool, "etcd state") or False,
            new_cluster=optional(d, "newCluster", parse_bool, "etcd state") or False,
            extra={k: v for k, v in d.items() if k not in known},
        )

    def with_changes(self, **changes: Any) -> EtcdState:
        return replace(self, **changes)

    to_wire = to_json
    from_wire = from_json


def parse_nodes(d: dict[str, Any], key: str, what: str) -> tuple[EtcdNode, ...]:
    """The members of a cluster: each a valid node, no name twice (etcd's initial cluster)."""
    nodes = listed(d, key, nested(EtcdNode.from_json), what)
    check_unique_names(nodes, f"{what}: field {key!r}")
    return nodes


def check_unique_names(nodes: tuple[EtcdNode, ...], where: str) -> None:
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise InvalidData(f"{where} names a member twice")
