"""The file:// backup store: the layout of etcdmgr.store.layout in a local (or shared) folder.

Every call runs in a worker thread under a deadline (``timeout``, longer for bulk copies; see
store/deadline.py): a hung NFS or FUSE mount makes the call fail with StoreError instead of
freezing the daemon.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command
from etcdmgr.model.errors import EtcdmgrError
from etcdmgr.model.ids import BackupName, CommandName, name_time, parse_command_name
from etcdmgr.store import layout
from etcdmgr.store.codec import encode_go_json, encode_proto_json
from etcdmgr.store.deadline import DEFAULT_TIMEOUT, THREADS, bulk_timeout, in_thread
from etcdmgr.store.documents import (
    checksums_bytes,
    created_bytes,
    created_timestamp,
    decode,
    failure_bytes,
    parse_checksums,
    parse_document,
    parse_failure,
    unreadable_failure,
)
from etcdmgr.store.errors import StoreError
from etcdmgr.store.files import copy_atomic, stream_file, take_over
from etcdmgr.store.interface import CommandListing, FailedCommand
from etcdmgr.util.atomic import create_exclusive, fsync_dir, make_dirs, remove_file, write_atomic

if TYPE_CHECKING:
    import trio

T = TypeVar("T")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
# How often a leader looks at the store for a changed spec or a new command: a folder is cheap.
POLL_INTERVAL = 0.5


class FileStore:
    """A backup store kept in the folder ``root``; each call fails after ``timeout`` seconds."""

    def __init__(self, root: Path, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError("a store timeout must be positive")
        self.root = root
        self._url = url
        self.timeout = timeout
        self._limiter: trio.CapacityLimiter | None = None  # made at the first call under trio
        # Folders and files this object has seen exist: their absence is then an error.
        self._seen: set[Path] = set()

    @property
    def url(self) -> str:
        return self._url

    @property
    def cheap_writes(self) -> bool:
        return True

    @property
    def poll_interval(self) -> float:
        return POLL_INTERVAL

    def __repr__(self) -> str:
        return f"FileStore({self._url!r})"

    async def _run(self, what: str, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """``fn(*args)`` in a worker thread, abandoned (StoreError) when it outlives its deadline."""

        def too_slow(limit: float) -> StoreError:
            return StoreError(
                f"backup store {self._url} did not answer within {limit:g}s ({what}); is its mount hung?"
            )

        return await in_thread(
            self._threads, self.timeout if timeout is None else timeout, too_slow, fn, *args
        )

    def _threads(self) -> trio.CapacityLimiter:
        # trio is imported only by a caller that runs under it: ctl's store-only commands do not.
        import trio

        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(THREADS)
        return self._limiter

    def _bulk_timeout(self, size: int) -> float:
        return bulk_timeout(self.timeout, size)

    # -- desired state -------------------------------------------------------------------------

    async def read_spec(self) -> ClusterSpec | None:
        path = self._control / layout.SPEC_FILE
        doc = await self._run("reading the cluster spec", self._read_known, path, "cluster spec")
        return None if doc is None else _decode(ClusterSpec.from_json, doc, path)

    async def write_spec(self, spec: ClusterSpec) -> None:
        data = encode_proto_json(spec.to_json())
        await self._run("writing the cluster spec", self._write, self._control / layout.SPEC_FILE, data)

    async def read_created(self) -> int | None:
        path = self._control / layout.CREATED_FILE
        doc = await self._run("reading the created marker", self._read_known, path, "created marker")
        if doc is None:
            return None
        return _decode(created_timestamp, doc, path)

    async def write_created(self, timestamp_nanos: int) -> None:
        path = self._control / layout.CREATED_FILE
        await self._run("writing the created marker", self._write, path, created_bytes(timestamp_nanos))

    async def create_created_marker(self, timestamp_nanos: int) -> bool:
        path = self._control / layout.CREATED_FILE
        return await self._run(
            "creating the created marker", self._claim, path, created_bytes(timestamp_nanos)
        )

    # -- claims --------------------------------------------------------------------------------

    async def claim(self, key: str, body: bytes) -> bool:
        return await self._run(f"claiming {key}", self._claim, self._key_path(key), body)

    async def read_claim(self, key: str) -> bytes | None:
        return await self._run(f"reading {key}", self._read_bytes, self._key_path(key))

    async def write_claim(self, key: str, body: bytes) -> None:
        await self._run(f"writing {key}", self._write, self._key_path(key), body, False)

    def _claim(self, path: Path, body: bytes) -> bool:
        self._present()
        try:
            return create_exclusive(path, body, 0o600)
        except OSError as e:
            raise StoreError(f"cannot create {path}: {e.strerror or e}") from None

    def _read_bytes(self, path: Path) -> bytes | None:
        self._present()
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise StoreError(f"cannot read {path}: {e.strerror or e}") from None

    def _key_path(self, key: str) -> Path:
        return self.root.joinpath(*(layout.check_component(part, "store key") for part in key.split("/")))

    # -- commands ------------------------------------------------------------------------------

    async def list_commands(self) -> CommandListing:
        return await self._run("listing commands", self._list_commands)

    def _list_commands(self) -> CommandListing:
        self._present()
        commands: list[Command] = []
        broken: dict[str, str] = {}
        failed: dict[CommandName, FailedCommand] = {}
        for folder in _subfolders(self._control):
            path = self._control / folder / layout.COMMAND_FILE
            try:
                doc = _read_json(path)
                if doc is None:
                    continue
                name = parse_command_name(folder, "command folder")
                cmd = _decode(partial(Command.from_json, name=name), doc, path)
            except EtcdmgrError as e:
                broken[folder] = str(e)
                continue
            failure = _read_failure(self._control / name / layout.FAILED_FILE)
            if failure is None:
                commands.append(cmd)
            else:
                failed[name] = FailedCommand(cmd, *failure)
        commands.sort(key=lambda c: (c.timestamp, c.name))
        return CommandListing(commands=commands, broken=broken, failed=failed)

    async def add_command(self, cmd: Command) -> CommandName:
        return await self._run("queueing a command", self._add_command, cmd)

    def _add_command(self, cmd: Command) -> CommandName:
        self._present()
        when = datetime.fromtimestamp(cmd.timestamp // 1_000_000_000, UTC)
        # The original always uses sequence 000000; later ones only break ties within a second.
        name = CommandName(self._claim_folder(self._control, when, first_seq=0))
        self._write(self._control / name / layout.COMMAND_FILE, encode_proto_json(cmd.to_json()))
        return name

    async def remove_command(self, name: CommandName) -> None:
        folder = self._control / layout.check_component(name, "command")
        await self._run(f"removing command {name}", self._remove_folder, folder, [layout.COMMAND_FILE])

    async def mark_command_failed(self, name: str, reason: str, when: datetime) -> None:
        path = self._key_path(layout.command_file_key(name, layout.FAILED_FILE))
        data = failure_bytes(reason, when)
        await self._run(f"marking command {name} failed", self._write, path, data, False)

    # -- backups -------------------------------------------------------------------------------

    async def list_backups(self) -> list[BackupName]:
        return await self._run("listing backups", self._list_backups)

    def _list_backups(self) -> list[BackupName]:
        if not self._present():
            return []
        found = [
            name
            for folder in _subfolders(self.root)
            if (name := layout.as_backup_name(folder)) and _is_file(self.root / name / layout.META_FILE)
        ]
        return sorted(found, key=name_time)

    async def new_backup_name(self, now: datetime) -> BackupName:
        return BackupName(await self._run("naming a backup", self._next_name, self.root, now, 1))

    async def write_backup(self, name: BackupName, files: dict[str, Path], info: BackupInfo) -> BackupInfo:
        if layout.parse_name(name) is None:
            raise StoreError(f"invalid backup name {name!r}: expected e.g. 2019-01-14T15:26:45Z-000001")
        for filename in files:
            layout.check_component(filename, "backup file")
            if filename in (layout.META_FILE, layout.CHECKSUMS_FILE):
                raise StoreError(f"backup file name {filename!r} is reserved by the store")
        import trio  # only a daemon writes backups, and it runs under trio

        size = await trio.to_thread.run_sync(_total_size, list(files.values()))
        return await self._run(
            f"writing backup {name}",
            self._write_backup,
            name,
            files,
            info,
            timeout=self._bulk_timeout(size),
        )

    def _write_backup(self, name: BackupName, files: dict[str, Path], info: BackupInfo) -> BackupInfo:
        self._present()
        folder = self.root / name
        if not _mkdir_exclusive(folder):
            raise StoreError(f"backup {name} already exists in {self._url}")
        try:
            checksums = {fn: take_over(src, folder / fn) for fn, src in sorted(files.items())}
            write_atomic(folder / layout.CHECKSUMS_FILE, checksums_bytes(checksums), 0o600)
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
        return await self._run(f"reading backup {name}", self._read_backup_info, folder)

    def _read_backup_info(self, folder: Path) -> BackupInfo:
        self._present()
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
        what = f"fetching {filename} of backup {name}"
        try:
            size = await self._run(what, lambda: src.stat().st_size)
            await self._run(what, copy_atomic, src, dest, expect, timeout=self._bulk_timeout(size))
        except FileNotFoundError:
            raise StoreError(f"backup {name} in {self._url} has no file {filename}") from None
        except OSError as e:
            raise StoreError(f"cannot fetch {filename} of backup {name} to {dest}: {e}") from None
        return dest

    async def read_backup_file(
        self, name: BackupName, filename: str, sink: Callable[[bytes], object]
    ) -> None:
        folder = self.root / layout.check_component(name, "backup")
        src = folder / layout.check_component(filename, "backup file")
        info = await self.read_backup_info(name)
        expect = info.checksums.get(filename)
        what = f"reading {filename} of backup {name}"
        try:
            size = await self._run(what, lambda: src.stat().st_size)
            await self._run(what, stream_file, src, sink, expect, timeout=self._bulk_timeout(size))
        except FileNotFoundError:
            raise StoreError(f"backup {name} in {self._url} has no file {filename}") from None
        except OSError as e:
            raise StoreError(f"cannot read {filename} of backup {name}: {e}") from None

    async def check_create_if_absent(self) -> str | None:
        return None  # link(2) never replaces: claims are exclusive on every local filesystem

    async def delete_backup(self, name: BackupName) -> None:
        folder = self.root / layout.check_component(name, "backup")
        # Meta first: a delete cut short leaves an unlisted folder, never a listed broken backup.
        await self._run(f"deleting backup {name}", self._remove_folder, folder, [layout.META_FILE])

    async def backup_files(self, name: BackupName) -> dict[str, int]:
        folder = self.root / layout.check_component(name, "backup")
        return await self._run(f"listing the files of backup {name}", self._backup_files, folder)

    def _backup_files(self, folder: Path) -> dict[str, int]:
        self._present()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            raise StoreError(f"no backup named {folder.name} in {self._url}") from None
        except OSError as e:
            raise StoreError(f"cannot list {folder}: {e.strerror or e}") from None
        return {e.name: e.stat().st_size for e in entries if e.is_file() and not e.name.startswith(".")}

    async def read_backup_extra(self, name: BackupName, filename: str) -> bytes | None:
        path = self._extra_path(name, filename)
        return await self._run(f"reading {filename} of backup {name}", self._read_bytes, path)

    async def write_backup_extra(self, name: BackupName, filename: str, body: bytes) -> None:
        path = self._extra_path(name, filename)
        await self._run(f"writing {filename} of backup {name}", self._write_extra, path, body)

    def _write_extra(self, path: Path, body: bytes) -> None:
        # Only into a complete backup: one deleted meanwhile is not brought back as a folder
        # holding our file alone.
        if not _is_file(path.parent / layout.META_FILE):
            raise StoreError(f"backup {path.parent.name} is not in {self._url} (any more)")
        self._write(path, body, False)

    def _extra_path(self, name: BackupName, filename: str) -> Path:
        layout.check_component(filename, "backup file")
        if not filename.startswith(layout.OUR_PREFIX):
            raise StoreError(f"backup file {filename!r} is not one of ours ({layout.OUR_PREFIX}*)")
        return self.root / layout.check_component(name, "backup") / filename

    # -- our own files under control/ ------------------------------------------------------------

    async def read_status(self) -> bytes | None:
        return await self._run("reading the status", self._read_bytes, self._control / layout.STATUS_FILE)

    async def write_status(self, body: bytes) -> None:
        await self._run("writing the status", self._write, self._control / layout.STATUS_FILE, body)

    async def request_backup(self, now: datetime) -> str:
        return await self._run("requesting a backup", self._request_backup, now)

    def _request_backup(self, now: datetime) -> str:
        self._present()
        make_dirs(self._control)
        body = encode_go_json({"time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        seq = 0
        while True:
            name = layout.format_name(now, seq)
            if self._claim(self._control / layout.backup_request_file(name), body):
                return name
            seq += 1  # another request in the same second

    async def list_backup_requests(self) -> list[str]:
        return await self._run("listing backup requests", self._list_backup_requests)

    def _list_backup_requests(self) -> list[str]:
        self._present()
        try:
            entries = list(os.scandir(self._control))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise StoreError(f"cannot list {self._control}: {e.strerror or e}") from None
        names = [n for e in entries if e.is_file() and (n := layout.backup_request_name(e.name))]
        return sorted(names, key=lambda n: layout.parse_name(n) or ())

    async def remove_backup_requests(self, names: Collection[str]) -> None:
        paths = [
            self._control / layout.check_component(layout.backup_request_file(n), "request") for n in names
        ]
        if paths:
            await self._run("removing backup requests", self._remove_files, paths)

    def _remove_files(self, paths: list[Path]) -> None:
        self._present()
        try:
            for path in paths:
                remove_file(path)
        except OSError as e:
            raise StoreError(f"cannot remove {e.filename}: {e.strerror or e}") from None

    # -- helpers -------------------------------------------------------------------------------

    @property
    def _control(self) -> Path:
        return self.root / layout.CONTROL_DIR

    def _present(self) -> bool:
        """Whether the store folder exists. Once this object has seen it (or its control folder),
        its absence is an error: a lost mount or a moved folder must never read as a new store."""
        for path, what in ((self.root, "store folder"), (self._control, "control folder")):
            try:
                is_dir = stat.S_ISDIR(os.stat(path).st_mode)
            except FileNotFoundError:
                if path in self._seen:
                    raise StoreError(
                        f"{what} {path} has gone away (it existed before): is the store's mount or "
                        "folder missing? Nothing is changed until it is back"
                    ) from None
                continue
            except OSError as e:
                raise StoreError(f"cannot reach {what} {path}: {e.strerror or e}") from None
            if not is_dir:
                raise StoreError(f"{what} {path} is not a folder")
            self._seen.add(path)
        return self.root in self._seen

    def _read_known(self, path: Path, what: str) -> Any:
        """The parsed file, None while it was never there; once read, its absence is an error."""
        self._present()
        doc = _read_json(path)
        if doc is not None:
            self._seen.add(path)
        elif path in self._seen:
            raise StoreError(
                f"{what} {path} has gone away (it was read before); nothing is changed until it is back"
            )
        return doc

    def _write(self, path: Path, data: bytes, create_folders: bool = True) -> None:
        """Write ``path`` atomically; without ``create_folders`` its folder must exist (a command
        removed meanwhile is not brought back as a folder holding only our file)."""
        self._present()
        if not create_folders and not path.parent.is_dir():
            raise StoreError(f"cannot write {path}: {path.parent} does not exist (any more)")
        try:
            write_atomic(path, data, 0o600)
        except OSError as e:
            raise StoreError(f"cannot write {path}: {e.strerror or e}") from None

    def _remove_folder(self, folder: Path, first: list[str]) -> None:
        self._present()
        _remove_folder(folder, first)

    def _next_name(self, parent: Path, now: datetime, first_seq: int) -> str:
        return layout.next_name(_subfolders(parent), now, first_seq)

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


def _total_size(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        try:
            total += p.stat().st_size
        except OSError:
            continue  # the copy reports it
    return total


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror or e}") from None


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
    return parse_document(data, str(path))


def _decode(parse: Callable[[Any], T], doc: Any, path: Path) -> T:
    return decode(parse, doc, str(path))


def _read_failure(path: Path) -> tuple[str, str] | None:
    """(reason, when) from a command's failure record, None when it has none."""
    try:
        doc = _read_json(path)
    except EtcdmgrError as e:
        return unreadable_failure(e)
    return None if doc is None else parse_failure(doc)


def _read_checksums(path: Path) -> dict[str, str]:
    """{} when the file is absent (backups the original wrote)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror or e}") from None
    return parse_checksums(data, str(path))


def _remove_folder(folder: Path, first: list[str]) -> None:
    """Remove the files named in ``first`` (in order, each removal made durable before the next
    step), then the rest of the folder."""
    try:
        for name in first:
            remove_file(folder / name)
        if folder.exists():
            shutil.rmtree(folder)
            fsync_dir(folder.parent)
    except OSError as e:
        raise StoreError(f"cannot delete {folder}: {e.strerror or e}") from None
