"""The desired cluster (ClusterSpec) and what a node runs (EtcdNode, EtcdCluster, EtcdState)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from etcdmgr.model.errors import InvalidData
from etcdmgr.model.fields import as_dict, get, str_list

VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def parse_version(version: str) -> tuple[int, int, int]:
    """'3.4.23' -> (3, 4, 23); raises InvalidData otherwise."""
    m = VERSION_RE.match(version.strip().lstrip("v"))
    if not m:
        raise InvalidData(f"etcd version {version!r} is not of the form X.Y.Z")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


@dataclass(frozen=True)
class ClusterSpec:
    """control/etcd-cluster-spec: what the operator asked for."""

    member_count: int
    etcd_version: str

    def to_json(self) -> dict[str, Any]:
        return {"memberCount": self.member_count, "etcdVersion": self.etcd_version}

    @classmethod
    def from_json(cls, data: Any) -> ClusterSpec:
        d = as_dict(data, "cluster spec")
        return cls(
            member_count=get(d, "memberCount", int, 0, "cluster spec"),
            etcd_version=get(d, "etcdVersion", str, "", "cluster spec"),
        )

    def validate(self) -> None:
        """Raise InvalidData when this spec cannot be carried out by any daemon."""
        if self.member_count < 1:
            raise InvalidData(f"member count must be a positive integer, got {self.member_count}")
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

    name: str
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
            name=get(d, "name", str, "", "etcd node"),
            peer_urls=str_list(d, "peerUrls", "etcd node"),
            client_urls=str_list(d, "clientUrls", "etcd node"),
            quarantined_client_urls=str_list(d, "quarantinedClientUrls", "etcd node"),
            tls_enabled=get(d, "tlsEnabled", bool, False, "etcd node"),
        )

    to_wire = to_json
    from_wire = from_json


@dataclass(frozen=True)
class EtcdCluster:
    """The founding configuration of one etcd cluster: its token and initial members."""

    cluster_token: str
    nodes: tuple[EtcdNode, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"clusterToken": self.cluster_token, "nodes": [n.to_json() for n in self.nodes]}

    @classmethod
    def from_json(cls, data: Any) -> EtcdCluster:
        d = as_dict(data, "etcd cluster")
        nodes = d.get("nodes") or []
        if not isinstance(nodes, list):
            raise InvalidData("etcd cluster: nodes should be a list")
        return cls(
            cluster_token=get(d, "clusterToken", str, "", "etcd cluster"),
            nodes=tuple(EtcdNode.from_json(n) for n in nodes),
        )


@dataclass(frozen=True)
class EtcdState:
    """A node's own state file: which cluster it is a member of, on which version, quarantined or not."""

    cluster: EtcdCluster
    etcd_version: str
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
            cluster=EtcdCluster.from_json(d.get("cluster") or {}),
            etcd_version=get(d, "etcdVersion", str, "", "etcd state"),
            quarantined=get(d, "quarantined", bool, False, "etcd state"),
            new_cluster=get(d, "newCluster", bool, False, "etcd state"),
            extra={k: v for k, v in d.items() if k not in known},
        )

    def with_changes(self, **changes: Any) -> EtcdState:
        return replace(self, **changes)

    to_wire = to_json
    from_wire = from_json
