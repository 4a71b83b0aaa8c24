"""What is known about one backup: <name>/_etcd_backup.meta in the backup store, plus checksums.

The original writes a protobuf ``BackupInfo`` with jsonpb (proto3 JSON): camelCase names,
int64 ``timestamp`` (unix seconds) as a JSON string, default-valued fields omitted. Its
readers (jsonpb, later protojson) reject unknown fields, so the meta file holds exactly the
original's three fields; the checksums live in a separate file of the backup (see
etcdmgr.store), which the original ignores.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.fields import as_dict, nested, optional, required
from etcdmgr.model.values import EtcdVersion, parse_etcd_version, parse_unix_seconds


@dataclass(frozen=True)
class BackupInfo:
    etcd_version: EtcdVersion
    timestamp: int  # unix seconds
    cluster_spec: ClusterSpec | None = None
    checksums: dict[str, str] = field(default_factory=dict)  # file name -> sha256 hex; {} = unknown

    def to_json(self) -> dict[str, Any]:
        """The meta file's fields; checksums are not among them (see the module docstring)."""
        out: dict[str, Any] = {}
        if self.etcd_version:
            out["etcdVersion"] = self.etcd_version
        if self.timestamp:
            out["timestamp"] = str(self.timestamp)
        if self.cluster_spec is not None:
            out["clusterSpec"] = self.cluster_spec.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any) -> BackupInfo:
        d = as_dict(data, "backup info")
        return cls(
            etcd_version=required(d, "etcdVersion", parse_etcd_version, "backup info"),
            timestamp=optional(d, "timestamp", parse_unix_seconds, "backup info") or 0,
            cluster_spec=optional(d, "clusterSpec", nested(ClusterSpec.from_json), "backup info"),
        )

    def with_checksums(self, checksums: dict[str, str]) -> BackupInfo:
        return replace(self, checksums=dict(checksums))
