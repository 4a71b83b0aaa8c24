"""What peers know of each other: endpoints (discovery) and GetInfo answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from etcdmgr.model.cluster import EtcdNode, EtcdState
from etcdmgr.model.fields import as_dict, listed, nested, optional, parse_bool, parse_text, required
from etcdmgr.model.ids import ClusterName, PeerId, parse_cluster_name, parse_peer_id
from etcdmgr.model.values import EtcdVersion, parse_etcd_version, parse_ip, parse_port


# The original's ids are URL-safe base64 (a leading '-' or '_' included); kops names nodes like
# `etcd-a`. Nothing that could be a path component of its own ('.', '..') or break a hosts file.
@dataclass(frozen=True, order=True)
class PeerEndpoint:
    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {"ip": self.ip, "port": self.port}

    @classmethod
    def from_json(cls, data: Any) -> PeerEndpoint:
        d = as_dict(data, "endpoint")
        return cls(
            ip=required(d, "ip", parse_ip, "endpoint"), port=required(d, "port", parse_port, "endpoint")
        )


@dataclass(frozen=True)
class PeerInfo:
    """A node's answer to GetInfo: who it is, what it would serve, what etcd it runs.

    ``state_problem`` says why a node without etcd state is not simply empty: its state file
    could not be read (it was moved aside), so its old member's data may still be on its disk.
    ``etcd_problem`` says why a node with etcd state runs no etcd: its starts keep failing (a
    crash loop; it keeps retrying). ``etcd_healthy`` is the node's own check of its member's
    /health, with its own credentials (None: no member running, or not checked): the leader uses
    it for a member it has no credentials to check itself, e.g. while a cluster moves to TLS.
    ``etcd_trust_outdated``: the running etcd trusts other CA certificates than its bundles on
    disk hold (a CA rotation changed them; etcd reads them only at start), so it needs a restart.
    Peers of earlier releases send none of these; they read as absent.
    """

    peer_id: PeerId
    cluster_name: ClusterName
    node: EtcdNode
    etcd_state: EtcdState | None
    etcd_running: bool = False
    installed_versions: tuple[EtcdVersion, ...] = ()
    state_problem: str | None = None
    etcd_problem: str | None = None
    etcd_healthy: bool | None = None
    etcd_trust_outdated: bool = False

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "peerId": self.peer_id,
            "clusterName": self.cluster_name,
            "node": self.node.to_wire(),
            "etcdState": self.etcd_state.to_wire() if self.etcd_state else None,
            "etcdRunning": self.etcd_running,
            "installedVersions": list(self.installed_versions),
        }
        if self.state_problem is not None:
            out["stateProblem"] = self.state_problem
        if self.etcd_problem is not None:
            out["etcdProblem"] = self.etcd_problem
        if self.etcd_healthy is not None:
            out["etcdHealthy"] = self.etcd_healthy
        if self.etcd_trust_outdated:
            out["etcdTrustOutdated"] = True
        return out

    @classmethod
    def from_wire(cls, data: Any) -> PeerInfo:
        d = as_dict(data, "peer info")
        return cls(
            peer_id=required(d, "peerId", parse_peer_id, "peer info"),
            cluster_name=required(d, "clusterName", parse_cluster_name, "peer info"),
            node=required(d, "node", nested(EtcdNode.from_wire), "peer info"),
            etcd_state=optional(d, "etcdState", nested(EtcdState.from_wire), "peer info"),
            etcd_running=optional(d, "etcdRunning", parse_bool, "peer info") or False,
            installed_versions=listed(d, "installedVersions", parse_etcd_version, "peer info"),
            state_problem=optional(d, "stateProblem", parse_text, "peer info"),
            etcd_problem=optional(d, "etcdProblem", parse_text, "peer info"),
            etcd_healthy=optional(d, "etcdHealthy", parse_bool, "peer info"),
            etcd_trust_outdated=optional(d, "etcdTrustOutdated", parse_bool, "peer info") or False,
        )
