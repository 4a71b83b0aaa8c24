"""The file:// backup store: the layout of etcdmgr.store.layout in a local (or shared) folder."""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio

from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command
from etcdmgr.model.errors import EtcdmgrError, InvalidData
from etcdmgr.model.fields import as_dict, optional
from etcdmgr.model.ids import BackupName, CommandName, name_time, parse_command_name
from etcdmgr.model.values import parse_unix_nanos
from etcdmgr.store import layout
from etcdmgr.store.codec import decode_json, encode_go_json, encode_proto_json
from etcdmgr.store.errors import StoreError
from etcdmgr.store.files import copy_atomic
from etcdmgr.store.interface import CommandListing
from etcdmgr.util.atomic import fsync_dir, make_dirs, write_atomic

T = TypeVar("T")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


class FileStore:
    """A backup store kept in the folder ``root``. Blocking I/O runs in worker threads."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self._url = url

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"FileStore({self._url!r})"

    # -- desired state -------------------------------------------------------------------------

    async def read_spec(self) -> ClusterSpec | None:
        path = self._control / layout.SPEC_FILE
        doc = await trio.to_thread.run_sync(_read_json, path)
        return None if doc is None else _decode(ClusterSpec.from_json, doc, path)

    async def write_spec(self, spec: ClusterSpec) -> None:
        data = encode_proto_json(spec.to_json())
        await trio.to_thread.run_sync(self._write, self._control / layout.SPEC_FILE, data)

    async def read_created(self) -> int | None:
        path = self._control / layout.CREATED_FILE
        doc = await trio.to_thread.run_sync(_read_json, path)
        if doc is None:
            return None
        return _decode(_created_timestamp, doc, path)

    async def write_created(self, timestamp_nanos: int) -> None:
        # encoding/json with `omitempty`, as the original writes it.
        data = encode_go_json({"timestamp": timestamp_nanos} if timestamp_nanos else {})
        await trio.to_thread.run_sync(self._write, self._control / layout.CREATED_FILE, data)

    # -- commands ------------------------------------------------------------------------------

    async def list_commands(self) -> CommandListing:
        return await trio.to_thread.run_sync(self._list_commands)

    def _list_commands(self) -> CommandListing:
        commands: list[Command] = []
        broken: dict[str, str] = {}
        for folder in _subfolders(self._control):
            path = self._control / folder / layout.COMMAND_FILE
            try:
                doc = _read_json(path)
                if doc is not None:
                    name = parse_command_name(folder, "command folder")
                    commands.append(_decode(partial(Command.from_json, name=name), doc, path))
            except EtcdmgrError as e:
                broken[folder] = str(e)
        commands.sort(key=lambda c: (c.timestamp, c.name))
        return CommandListing(commands=commands, broken=broken)

    async def add_command(self, cmd: Command) -> CommandName:
        return await trio.to_thread.run_sync(self._add_command, cmd)

    def _add_command(self, cmd: Command) -> CommandName:
        when = datetime.fromtimestamp(cmd.timestamp // 1_000_000_000, UTC)
        # The original always uses sequence 000000; later ones only break ties within a second.
        name = CommandName(self._claim_folder(self._control, when, first_seq=0))
        self._write(self._control / name / layout.COMMAND_FILE, encode_proto_json(cmd.to_json()))
        return name

    async def remove_command(self, name: CommandName) -> None:
        folder = self._control / layout.check_component(name, "command")
        await trio.to_thread.run_sync(_remove_folder, folder, [layout.COMMAND_FILE])

    # -- backups -------------------------------------------------------------------------------

    async def list_backups(self) -> list[BackupName]:
        return await trio.to_thread.run_sync(self._list_backups)

    def _list_backups(self) -> list[BackupName]:
        found = [
            name
            for folder in _subfolders(self.root)
            if (name := layout.as_backup_name(folder)) and (self.root / name / layout.META_FILE).is_file()
        ]
        return sorted(found, key=name_time)

    async def new_backup_name(self, now: datetime) -> BackupName:
        return BackupName(await trio.to_thread.run_sync(self._next_name, self.root, now, 1))

    async def write_backup(self, name: BackupName, files: dict[str, Path], info: BackupInfo) -> BackupInfo:
        if layout.parse_name(name) is None:
            raise StoreError(f"invalid backup name {name!r}: expected e.g. 2019-01-14T15:26:45Z-000001")
        for filename in files:
            layout.check_component(filename, "backup file")
            if filename in (layout.META_FILE, layout.CHECKSUMS_FILE):
                raise StoreError(f"backup file name {filename!r} is reserved by the store")
        return await trio.to_thread.run_sync(self._write_backup, name, files, info)

    def _write_backup(self, name: BackupName, files: dict[str, Path], info: BackupInfo) -> BackupInfo:
        folder = self.root / name
        if not _mkdir_exclusive(folder):
            raise StoreError(f"backup {name} already exists in {self._url}")
        try:
            checksums = {fn: copy_atomic(src, folder / fn) for fn, src in sorted(files.items())}
            sums = "".join(f"{digest}  {fn}\n" for fn, digest in checksums.items())
            write_atomic(folder / layout.CHECKSUMS_FILE, sums.encode(), 0o600)
            write_atomic(folder / layout.META_FILE, encode_proto_json(info.to_json()), 0o600)
        except BaseException as e:
            # No meta yet, so nothing lists it; remove the rest rather than leave it behind.
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(e, OSError):
                raise StoreError(f"cannot write backup {name} to {self._url}: {e}") from None
            raise
        return info.with_checksums(checksums)

    async def read_backup_info(self, name: BackupName) -> BackupInfo:
        folder = self.root / layout.check_component(name, "backup")
        return await trio.to_thread.run_sync(self._read_backup_info, folder)

    def _read_backup_info(self, folder: Path) -> BackupInfo:
        meta = folder / layout.META_FILE
        doc = _read_json(meta)
        if doc is None:
            raise StoreError(f"no backup named {folder.name} in {self._url} (missing {meta})")
        info = _decode(BackupInfo.from_json, doc, meta)
        return info.with_checksums(_read_checksums(folder / layout.CHECKSUMS_FILE))

    async def fetch_backup_file(self, name: BackupName, filename: str, dest: Path) -> Path:
        folder = self.root / layout.check_component(name, "backup")
        src = folder / layout.check_component(filename, "backup file")
        info = await self.read_backup_info(name)
        expect = info.checksums.get(filename)
        try:
            await trio.to_thread.run_sync(copy_atomic, src, dest, expect)
        except FileNotFoundError:
            raise StoreError(f"backup {name} in {self._url} has no file {filename}") from None
        except OSError as e:
            raise StoreError(f"cannot fetch {filename} of backup {name} to {dest}: {e}") from None
        return dest

    async def delete_backup(self, name: BackupName) -> None:
        folder = self.root / layout.check_component(name, "backup")
        # Meta first: a delete cut short leaves an unlisted folder, never a listed broken backup.
        await trio.to_thread.run_sync(_remove_folder, folder, [layout.META_FILE])

    # -- helpers -------------------------------------------------------------------------------

    @property
    def _control(self) -> Path:
        return self.root / layout.CONTROL_DIR

    def _write(self, path: Path, data: bytes) -> None:
        try:
            write_atomic(path, data, 0o600)
        except OSError as e:
            raise StoreError(f"cannot write {path}: {e.strerror or e}") from None

    def _next_name(self, parent: Path, now: datetime, first_seq: int) -> str:
        """The name for ``now`` with a sequence above every one already used in that second."""
        second = layout.utc_second(now)
        used = [p[1] for n in _subfolders(parent) if (p := layout.parse_name(n)) and p[0] == second]
        return layout.format_name(second, max([first_seq - 1, *used]) + 1)

    def _claim_folder(self, parent: Path, when: datetime, first_seq: int) -> str:
        while True:
            name = self._next_name(parent, when, first_seq)
            if _mkdir_exclusive(parent / name):
                return name
            # Taken by a concurrent writer since we looked: look again.


def _mkdir_exclusive(folder: Path) -> bool:
    """Create ``folder`` (and its parents); False when it already exists."""
    try:
        make_dirs(folder.parent)
        folder.mkdir()
    except FileExistsError:
        return False
    except OSError as e:
        raise StoreError(f"cannot create {folder}: {e.strerror or e}") from None
    fsync_dir(folder.parent)
    return True


def _subfolders(parent: Path) -> list[str]:
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise StoreError(f"cannot list {parent}: {e.strerror or e}") from None
    return [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]


def _read_json(path: Path) -> Any:
    """The parsed file, or None when it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ENOTDIR:
            return None
        raise StoreError(f"cannot read {path}: {e.strerror or e}") from None
    if not data.strip():
        raise InvalidData(f"{path} is empty")
    return decode_json(data, str(path))


def _decode(parse: Callable[[Any], T], doc: Any, path: Path) -> T:
    """Run ``parse`` on a decoded document, naming the file in any error."""
    try:
        return parse(doc)
    except InvalidData as e:
        raise InvalidData(f"{path}: {e}") from None


def _created_timestamp(doc: Any) -> int:
    what = "cluster-created marker"
    return optional(as_dict(doc, what), "timestamp", parse_unix_nanos, what) or 0


def _read_checksums(path: Path) -> dict[str, str]:
    """`sha256sum` lines ("<hex>  <name>"); {} when the file is absent (backups the original wrote)."""
    try:
        text = path.read_bytes().decode()
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise InvalidData(f"{path}: not text") from None
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror or e}") from None
    sums: dict[str, str] = {}
    for line in text.splitlines():
        digest, sep, filename = line.partition("  ")
        if not sep or not _SHA256_HEX.fullmatch(digest):
            raise InvalidData(f"{path}: malformed line {line!r}")
        sums[filename.lstrip("*")] = digest.lower()
    return sums


def _remove_folder(folder: Path, first: list[str]) -> None:
    """Remove the files named in ``first`` (in order), then the rest of the folder."""
    try:
        for name in first:
            (folder / name).unlink(missing_ok=True)
        if folder.exists():
            fsync_dir(folder)
            shutil.rmtree(folder)
            fsync_dir(folder.parent)
    except OSError as e:
        raise StoreError(f"cannot delete {folder}: {e.strerror or e}") from None
