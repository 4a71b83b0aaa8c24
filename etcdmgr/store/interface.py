"""What every backup store offers: file:// (file_store.py) and S3, GCS, Azure Blob (object_store.py)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command
from etcdmgr.model.ids import BackupName, CommandName


@dataclass(frozen=True)
class FailedCommand:
    """A command a leader gave up on, with why and when (UTC, RFC 3339); it is never run again."""

    command: Command
    reason: str
    failed_at: str


@dataclass(frozen=True)
class CommandListing:
    """Queued commands in run order (failed ones apart), and the ones that could not be read
    (name -> why)."""

    commands: list[Command]
    broken: dict[str, str] = field(default_factory=dict)
    failed: dict[CommandName, FailedCommand] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """One log line per unreadable command."""
        return [f"skipping command {name}: {why}" for name, why in sorted(self.broken.items())]

    @property
    def runnable(self) -> list[Command]:
        """The commands a leader carries out, in order: commands of a kind this program does not
        know are skipped rather than waited behind (see ``skipped``)."""
        return [c for c in self.commands if c.restore_backup is not None]

    @property
    def skipped(self) -> list[str]:
        """One log line per command a leader skips: failed ones and unknown kinds."""
        lines = [
            f"skipping failed command {name} (failed {f.failed_at}: {f.reason}); "
            f"remove it with `ctl delete-command {name}`"
            for name, f in sorted(self.failed.items())
        ]
        lines += [
            f"skipping command {c.name}: not a kind this program knows"
            for c in self.commands
            if c.restore_backup is None
        ]
        return lines


class BackupStore(Protocol):
    """Desired state, queued commands and backups of one cluster.

    A store that does not exist yet reads as empty (daemons may start before `ctl` creates it).
    Once a store object has seen the store, its disappearance (or that of the spec or the created
    marker) raises StoreError: a lost mount must never read as a new, empty store. Unreadable
    objects raise InvalidData naming the object; failures of the store itself, and calls that do
    not answer within the store's timeout, raise StoreError.
    """

    @property
    def url(self) -> str: ...

    @property
    def cheap_writes(self) -> bool:
        """True when a write costs only local I/O (file://). Object stores bill each request,
        so objects rewritten periodically (the status) are written less often there."""
        ...

    @property
    def poll_interval(self) -> float:
        """Seconds between two looks for a changed spec or a new command: reads may be this old
        (what the store object wrote itself is seen at once). Object stores bill per request."""
        ...

    async def check_create_if_absent(self) -> str | None:
        """Why this store cannot hold claims and the created marker (one line), None when it can.
        Asked once; create_created_marker and claim then refuse with that line."""
        ...

    async def read_spec(self) -> ClusterSpec | None: ...

    async def write_spec(self, spec: ClusterSpec) -> None: ...

    async def read_created(self) -> int | None:
        """Unix nanos of the cluster-created marker, 0 if it holds no time, None if absent.

        A marker that exists but cannot be read raises InvalidData: callers must then not
        create a cluster (the original, too, treats any non-empty marker as "created")."""
        ...

    async def write_created(self, timestamp_nanos: int) -> None:
        """Write the marker over any existing one: only under a claim (a restore being carried out)."""
        ...

    async def create_created_marker(self, timestamp_nanos: int) -> bool:
        """Write the marker unless one exists; True if this call created it. Whoever gets True
        may start a new cluster: the one-cluster claim."""
        ...

    async def claim(self, key: str, body: bytes) -> bool:
        """Create object ``key`` ("control/<command>/etcdmgr-claim.json") holding ``body`` unless
        it exists; True if this call created it. The object appears complete or not at all, and
        its folder must exist already."""
        ...

    async def read_claim(self, key: str) -> bytes | None:
        """The body of claim ``key``, None when absent."""
        ...

    async def write_claim(self, key: str, body: bytes) -> None:
        """Replace claim ``key`` (taking over a claim whose holder stopped leading)."""
        ...

    async def list_commands(self) -> CommandListing: ...

    async def add_command(self, cmd: Command) -> CommandName:
        """Queue ``cmd`` (its name is ignored) under a name made from its timestamp; return that name."""
        ...

    async def remove_command(self, name: CommandName) -> None: ...

    async def mark_command_failed(self, name: CommandName, reason: str, when: datetime) -> None:
        """Record that command ``name`` failed, beside it (never in _command.json): listings then
        report it under ``failed``. Raises StoreError when the command is gone."""
        ...

    async def list_backups(self) -> list[BackupName]:
        """Names of complete backups (meta present, name parses), oldest first."""
        ...

    async def new_backup_name(self, now: datetime) -> BackupName:
        """A name for a backup taken at ``now`` that no folder in the store uses yet."""
        ...

    async def write_backup(self, name: BackupName, files: dict[str, Path], info: BackupInfo) -> BackupInfo:
        """Store ``files`` (store file name -> local path) as backup ``name``, data first and meta
        last; return ``info`` with the files' sha256 checksums. The store may take the files
        over (file:// hard-links them when it can): callers only delete them afterwards."""
        ...

    async def read_backup_info(self, name: BackupName) -> BackupInfo:
        """The meta of backup ``name`` with its checksums ({} for backups the original wrote)."""
        ...

    async def fetch_backup_file(self, name: BackupName, filename: str, dest: Path) -> Path:
        """Copy one file of a backup to ``dest`` (atomically), verifying its checksum when known."""
        ...

    async def read_backup_file(
        self, name: BackupName, filename: str, sink: Callable[[bytes], object]
    ) -> None:
        """Pass one file of a backup to ``sink`` chunk by chunk, in a worker thread, and verify its
        checksum when known: a mismatch raises StoreError after the last chunk, so what ``sink``
        made is sound only once this returns. What ``sink`` raises ends the read and propagates (an
        OSError as a StoreError)."""
        ...

    async def delete_backup(self, name: BackupName) -> None: ...

    async def backup_files(self, name: BackupName) -> dict[str, int]:
        """The files of backup ``name`` and their sizes in bytes."""
        ...

    async def read_backup_extra(self, name: BackupName, filename: str) -> bytes | None:
        """A small file of ours in backup ``name`` (``etcdmgr-*``), None when absent. Not checked
        against the checksums: for showing; a restore uses fetch_backup_file."""
        ...

    async def write_backup_extra(self, name: BackupName, filename: str, body: bytes) -> None:
        """Add or replace a file of ours (``etcdmgr-*``) in the complete backup ``name``, e.g. a
        drill's record. Raises StoreError when the backup is gone (never recreates it)."""
        ...

    # -- files of ours under control/ that the original never reads ------------------------------

    async def read_status(self) -> bytes | None:
        """control/etcdmgr-status.json, None when absent."""
        ...

    async def write_status(self, body: bytes) -> None:
        """Replace control/etcdmgr-status.json (atomically)."""
        ...

    async def request_backup(self, now: datetime) -> str:
        """Ask the leader for a backup: create control/etcdmgr-backup-now-<name>.json, named from
        ``now``; return the name."""
        ...

    async def list_backup_requests(self) -> list[str]:
        """Names of pending backup requests, oldest first."""
        ...

    async def remove_backup_requests(self, names: Collection[str]) -> None:
        """Remove these backup requests (the ones already gone are skipped)."""
        ...
