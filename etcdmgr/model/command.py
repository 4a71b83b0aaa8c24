"""Queued commands: control/<RFC3339 UTC>-<6 digits>/_command.json in the backup store.

The original stores a protobuf ``Command`` marshalled with jsonpb (proto3 JSON): camelCase
names, int64 ``timestamp`` (unix nanoseconds) as a JSON string, fields at their default
value omitted. The command's name is its folder, not a field of the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.fields import as_dict, get


@dataclass(frozen=True)
class RestoreBackup:
    """Build a new cluster of ``cluster_spec`` from the backup named ``backup``."""

    cluster_spec: ClusterSpec
    backup: str

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"clusterSpec": self.cluster_spec.to_json()}
        if self.backup:
            out["backup"] = self.backup
        return out

    @classmethod
    def from_json(cls, data: Any) -> RestoreBackup:
        d = as_dict(data, "restore-backup command")
        return cls(
            cluster_spec=ClusterSpec.from_json(d.get("clusterSpec") or {}),
            backup=get(d, "backup", str, "", "restore-backup command"),
        )


@dataclass(frozen=True)
class Command:
    """One queued command; ``name`` is its folder under control/ ("" until the store adds it)."""

    name: str
    timestamp: int  # unix nanoseconds; commands run in this order
    restore_backup: RestoreBackup | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.timestamp:
            out["timestamp"] = str(self.timestamp)
        if self.restore_backup is not None:
            out["restoreBackup"] = self.restore_backup.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any, name: str = "") -> Command:
        d = as_dict(data, "command")
        restore = d.get("restoreBackup")
        return cls(
            name=name,
            timestamp=get(d, "timestamp", int, 0, "command"),
            restore_backup=RestoreBackup.from_json(restore) if restore is not None else None,
        )
