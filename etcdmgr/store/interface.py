"""What every backup store offers (file:// today; object stores can follow the same shape)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command
from etcdmgr.model.ids import BackupName, CommandName


@dataclass(frozen=True)
class CommandListing:
    """Queued commands in run order, and the ones that could not be read (name -> why)."""

    commands: list[Command]
    broken: dict[str, str] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """One log line per unreadable command."""
        return [f"skipping command {name}: {why}" for name, why in sorted(self.broken.items())]


class BackupStore(Protocol):
    """Desired state, queued commands and backups of one cluster.

    Missing objects read as None / empty; unreadable ones raise InvalidData naming the object;
    failures of the store itself raise StoreError.
    """

    @property
    def url(self) -> str: ...

    async def read_spec(self) -> ClusterSpec | None: ...

    async def write_spec(self, spec: ClusterSpec) -> None: ...

    async def read_created(self) -> int | None:
        """Unix nanos of the cluster-created marker, 0 if it holds no time, None if absent.

        A marker that exists but cannot be read raises InvalidData: callers must then not
        create a cluster (the original, too, treats any non-empty marker as "created")."""
        ...

    async def write_created(self, timestamp_nanos: int) -> None: ...

    async def list_commands(self) -> CommandListing: ...

    async def add_command(self, cmd: Command) -> CommandName:
        """Queue ``cmd`` (its name is ignored) under a name made from its timestamp; return that name."""
        ...

    async def remove_command(self, name: CommandName) -> None: ...

    async def list_backups(self) -> list[BackupName]:
        """Names of complete backups (meta present, name parses), oldest first."""
        ...

    async def new_backup_name(self, now: datetime) -> BackupName:
        """A name for a backup taken at ``now`` that no folder in the store uses yet."""
        ...

    async def write_backup(self, name: BackupName, files: dict[str, Path], info: BackupInfo) -> BackupInfo:
        """Store ``files`` (store file name -> local path) as backup ``name``, data first and meta
        last; return ``info`` with the files' sha256 checksums."""
        ...

    async def read_backup_info(self, name: BackupName) -> BackupInfo:
        """The meta of backup ``name`` with its checksums ({} for backups the original wrote)."""
        ...

    async def fetch_backup_file(self, name: BackupName, filename: str, dest: Path) -> Path:
        """Copy one file of a backup to ``dest`` (atomically), verifying its checksum when known."""
        ...

    async def delete_backup(self, name: BackupName) -> None: ...
