"""Queued commands: control/<RFC3339 UTC>-<6 digits>/_command.json in the backup store.

The original stores a protobuf ``Command`` marshalled with jsonpb (proto3 JSON): camelCase
names, int64 ``timestamp`` (unix nanoseconds) as a JSON string, fields at their default
value omitted. The command's name is its folder, not a field of the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.fields import as_dict, nested, optional, required
from etcdmgr.model.ids import BackupName, CommandName, parse_backup_name
from etcdmgr.model.values import parse_unix_nanos


@dataclass(frozen=True)
class RestoreBackup:
    """Build a new cluster of ``cluster_spec`` from the backup named ``backup``."""

    cluster_spec: ClusterSpec
    backup: BackupName

    def to_json(self) -> dict[str, Any]:
        return {"clusterSpec": self.cluster_spec.to_json(), "backup": self.backup}

    @classmethod
    def from_json(cls, data: Any) -> RestoreBackup:
        d = as_dict(data, "restore-backup command")
        return cls(
            cluster_spec=required(d, "clusterSpec", nested(ClusterSpec.from_json), "restore-backup command"),
            backup=required(d, "backup", parse_backup_name, "restore-backup command"),
        )


@dataclass(frozen=True)
class Command:
    """One queued command; ``name`` is its folder under control/ (None until the store adds it)."""

    name: CommandName | None
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
    def from_json(cls, data: Any, name: CommandName | None = None) -> Command:
        d = as_dict(data, "command")
        return cls(
            name=name,
            timestamp=optional(d, "timestamp", parse_unix_nanos, "command") or 0,
            restore_backup=optional(d, "restoreBackup", nested(RestoreBackup.from_json), "command"),
        )
