"""The control side of a cluster fixed by `--static-config` (the original's StaticStore).

The spec is the static config's: the store's spec file is neither read nor written. No command
is read or queued. The created marker is turned around and kept on the leader's own disk: a new
cluster may be created only while `<data dir>/please-create-new-cluster` exists (the operator
makes it on the first hosts of a new cluster), and creating the cluster, or finding one,
removes that file. Backups and claims go to the backup store as usual.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path

import trio

from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command
from etcdmgr.model.ids import BackupName, CommandName
from etcdmgr.store.errors import StoreError
from etcdmgr.store.interface import BackupStore, CommandListing
from etcdmgr.util.atomic import remove_file

log = logging.getLogger(__name__)

NEW_CLUSTER_MARKER = "please-create-new-cluster"


class StaticControl:
    """A BackupStore whose spec, created marker and commands follow the static config."""

    def __init__(self, store: BackupStore, spec: ClusterSpec, data_dir: Path) -> None:
        self.store = store
        self.spec = spec
        self.marker = data_dir / NEW_CLUSTER_MARKER

    @property
    def url(self) -> str:
        return self.store.url

    async def read_spec(self) -> ClusterSpec | None:
        return self.spec

    async def write_spec(self, spec: ClusterSpec) -> None:
        if spec != self.spec:
            log.warning("not keeping spec %s: --static-config fixes the spec", spec)

    async def read_created(self) -> int | None:
        return None if await trio.to_thread.run_sync(os.path.lexists, self.marker) else 0

    async def write_created(self, timestamp_nanos: int) -> None:
        await self.create_created_marker(timestamp_nanos)

    async def create_created_marker(self, timestamp_nanos: int) -> bool:
        taken = await trio.to_thread.run_sync(remove_file, self.marker)
        if taken:
            log.info("removed %s: the cluster exists now", self.marker)
        return taken

    async def claim(self, key: str, body: bytes) -> bool:
        return await self.store.claim(key, body)

    async def read_claim(self, key: str) -> bytes | None:
        return await self.store.read_claim(key)

    async def write_claim(self, key: str, body: bytes) -> None:
        await self.store.write_claim(key, body)

    async def list_commands(self) -> CommandListing:
        return CommandListing(commands=[])

    async def add_command(self, cmd: Command) -> CommandName:
        raise StoreError("a cluster fixed by --static-config takes no commands")

    async def remove_command(self, name: CommandName) -> None:
        raise StoreError("a cluster fixed by --static-config takes no commands")

    async def mark_command_failed(self, name: CommandName, reason: str, when: datetime) -> None:
        raise StoreError("a cluster fixed by --static-config takes no commands")

    async def list_backups(self) -> list[BackupName]:
        return await self.store.list_backups()

    async def new_backup_name(self, now: datetime) -> BackupName:
        return await self.store.new_backup_name(now)

    async def write_backup(self, name: BackupName, files: dict[str, Path], info: BackupInfo) -> BackupInfo:
        return await self.store.write_backup(name, files, info)

    async def read_backup_info(self, name: BackupName) -> BackupInfo:
        return await self.store.read_backup_info(name)

    async def fetch_backup_file(self, name: BackupName, filename: str, dest: Path) -> Path:
        return await self.store.fetch_backup_file(name, filename, dest)

    async def read_backup_file(
        self, name: BackupName, filename: str, sink: Callable[[bytes], object]
    ) -> None:
        await self.store.read_backup_file(name, filename, sink)

    async def delete_backup(self, name: BackupName) -> None:
        await self.store.delete_backup(name)

    @property
    def cheap_writes(self) -> bool:
        return self.store.cheap_writes

    async def backup_files(self, name: BackupName) -> dict[str, int]:
        return await self.store.backup_files(name)

    async def read_backup_extra(self, name: BackupName, filename: str) -> bytes | None:
        return await self.store.read_backup_extra(name, filename)

    async def write_backup_extra(self, name: BackupName, filename: str, body: bytes) -> None:
        await self.store.write_backup_extra(name, filename, body)

    async def read_status(self) -> bytes | None:
        return await self.store.read_status()

    async def write_status(self, body: bytes) -> None:
        await self.store.write_status(body)

    async def request_backup(self, now: datetime) -> str:
        return await self.store.request_backup(now)

    async def list_backup_requests(self) -> list[str]:
        return await self.store.list_backup_requests()

    async def remove_backup_requests(self, names: Collection[str]) -> None:
        await self.store.remove_backup_requests(names)

    @property
    def poll_interval(self) -> float:
        return self.store.poll_interval

    async def check_create_if_absent(self) -> str | None:
        return await self.store.check_create_if_absent()
