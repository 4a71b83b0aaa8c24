"""What peers know of each other: endpoints (discovery) and GetInfo answers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from etcdmgr.model.cluster import EtcdNode, EtcdState
from etcdmgr.model.fields import as_dict, get

# The original's ids are URL-safe base64 (a leading '-' or '_' included); kops names nodes like
# `etcd-a`. Nothing that could be a path component of its own ('.', '..') or break a hosts file.
_PEER_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def valid_peer_id(text: object) -> bool:
    return isinstance(text, str) and _PEER_ID.fullmatch(text) is not None and text not in (".", "..")


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
        return cls(ip=get(d, "ip", str, "", "endpoint"), port=get(d, "port", int, 0, "endpoint"))


@dataclass(frozen=True)
class PeerInfo:
    """A node's answer to GetInfo: who it is, what it would serve, what etcd it runs."""

    peer_id: str
    cluster_name: str
    node: EtcdNode
    etcd_state: EtcdState | None
    etcd_running: bool = False
    installed_versions: tuple[str, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {
            "peerId": self.peer_id,
            "clusterName": self.cluster_name,
            "node": self.node.to_wire(),
            "etcdState": self.etcd_state.to_wire() if self.etcd_state else None,
            "etcdRunning": self.etcd_running,
            "installedVersions": list(self.installed_versions),
        }

    @classmethod
    def from_wire(cls, data: Any) -> PeerInfo:
        d = as_dict(data, "peer info")
        state = d.get("etcdState")
        versions = d.get("installedVersions") or []
        return cls(
            peer_id=get(d, "peerId", str, "", "peer info"),
            cluster_name=get(d, "clusterName", str, "", "peer info"),
            node=EtcdNode.from_wire(d.get("node") or {}),
            etcd_state=EtcdState.from_wire(state) if state is not None else None,
            etcd_running=get(d, "etcdRunning", bool, False, "peer info"),
            installed_versions=tuple(str(v) for v in versions),
        )
