"""The backup store in S3, GCS or Azure Blob: the layout of store/layout.py holding the same
bytes as the file:// store, so that etcd-manager and etcdmgr read each other's stores.

Requests cost money on object stores (kopeio#356: a 10x bill from listing), so reads are served
from what this object last saw for up to ``poll_interval`` seconds (the leader's loop polls no
faster), and a spec, marker or command is fetched again only when the listing shows a new ETag:
a settled leader makes one LIST of control/ per poll interval and one LIST of the whole store
per ``backups_interval``. What this object writes itself is seen at once.

Once this object has seen objects in control/, or the spec or the created marker, their absence
is an error, never an empty store (a lifecycle rule that emptied control/ must not start a
second cluster). Every call runs in a worker thread under a deadline (store/deadline.py).

Claims and the created marker are create-if-absent writes. Some S3-compatible servers ignore
If-None-Match: before the first such write, a probe object is created twice; a store that lets
the second through is refused for creating or restoring clusters, with one line saying so.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio

from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command
from etcdmgr.model.errors import InvalidData
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
from etcdmgr.store.interface import CommandListing, FailedCommand
from etcdmgr.store.object_client import Meta, ObjectClient
from etcdmgr.store.object_config import ObjectSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL_INTERVAL = 10.0  # how stale the spec, marker and commands may be (the leader's poll)
BACKUPS_INTERVAL = 60.0  # how stale the list of backups may be (only the leader writes them)
SPEC_KEY = f"{layout.CONTROL_DIR}/{layout.SPEC_FILE}"
CREATED_KEY = f"{layout.CONTROL_DIR}/{layout.CREATED_FILE}"
PROBE_PREFIX = f"{layout.CONTROL_DIR}/etcdmgr-probe-"
STATUS_KEY = f"{layout.CONTROL_DIR}/{layout.STATUS_FILE}"


@dataclass
class _Listing:
    keys: dict[str, Meta]
    at: float


class ObjectStore:
    """A backup store under one bucket prefix; each call fails after ``timeout`` seconds."""

    def __init__(
        self,
        settings: ObjectSettings,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float = POLL_INTERVAL,
        backups_interval: float = BACKUPS_INTERVAL,
    ) -> None:
        if timeout <= 0:
            raise ValueError("a store timeout must be positive")
        self._client = ObjectClient(settings, "backup store")
        self._url = settings.location.url
        self.timeout = timeout
        self._poll = poll_interval
        self._backups_poll = max(poll_interval, backups_interval)
        self._limiter = trio.CapacityLimiter(THREADS)
        self._control: _Listing | None = None
        self._all: _Listing | None = None
        self._docs: dict[str, tuple[str, bytes]] = {}  # key -> (etag, body) of small objects read
        self._seen: set[str] = set()  # the spec and marker, once read: their absence is an error
        self._seen_control = False
        self._seen_store = False
        self._create_if_absent: str | None = None  # "ok", or why claims are refused

    @property
    def url(self) -> str:
        return self._url

    @property
    def poll_interval(self) -> float:
        return self._poll

    @property
    def cheap_writes(self) -> bool:
        return False  # every request is billed

    def __repr__(self) -> str:
        return f"ObjectStore({self._url!r})"

    async def _run(self, what: str, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        def too_slow(limit: float) -> StoreError:
            return StoreError(f"backup store {self._url} did not answer within {limit:g}s ({what})")

        return await in_thread(
            lambda: self._limiter, self.timeout if timeout is None else timeout, too_slow, fn, *args
        )

    # -- what this object has seen -------------------------------------------------------------

    async def _control_keys(self, fresh: bool = False) -> dict[str, Meta]:
        """Objects under control/, listed again when older than the poll interval."""
        now = trio.current_time()
        if fresh or self._control is None or now - self._control.at >= self._poll:
            keys = await self._run("listing control/", self._client.list, layout.CONTROL_DIR)
            return self._set_control(keys, now)
        return self._control.keys

    def _set_control(self, keys: dict[str, Meta], now: float) -> dict[str, Meta]:
        self._check_not_gone(bool(keys), self._seen_control, f"{self._url}/{layout.CONTROL_DIR}/")
        self._seen_control = self._seen_control or bool(keys)
        self._control = _Listing(keys, now)
        for key in [k for k in self._docs if k not in keys]:
            del self._docs[key]  # removed by someone else: its body is of no more use
        return keys

    async def _all_keys(self, fresh: bool = False) -> dict[str, Meta]:
        """Every object of the store, listed again when older than the backups interval."""
        now = trio.current_time()
        if fresh or self._all is None or now - self._all.at >= self._backups_poll:
            keys = await self._run("listing the store", self._client.list, "")
            self._check_not_gone(bool(keys), self._seen_store, self._url)
            self._seen_store = self._seen_store or bool(keys)
            self._all = _Listing(keys, now)
            self._set_control({k: m for k, m in keys.items() if k.startswith(f"{layout.CONTROL_DIR}/")}, now)
        return self._all.keys

    def _check_not_gone(self, present: bool, seen: bool, what: str) -> None:
        if seen and not present:
            # Forget the listing: the next call looks again rather than trusting an empty one.
            self._control = self._all = None
            raise StoreError(
                f"{what} holds no objects any more (it did before): was the store emptied or a "
                "lifecycle rule applied? Nothing is changed until it is back"
            )

    def _remember(self, key: str, etag: str, size: int, body: bytes | None = None) -> None:
        """What this object wrote is seen at once, whatever the listings' age."""
        for listing in (self._control, self._all):
            if listing is not None and (listing is self._all or key.startswith(f"{layout.CONTROL_DIR}/")):
                listing.keys[key] = Meta(etag, size)
        if body is not None and etag:
            self._docs[key] = (etag, body)
        if key.startswith(f"{layout.CONTROL_DIR}/"):
            self._seen_control = True
        self._seen_store = True

    def _forget(self, keys: list[str]) -> None:
        for listing in (self._control, self._all):
            if listing is not None:
                for key in keys:
                    listing.keys.pop(key, None)
        for key in keys:
            self._docs.pop(key, None)

    async def _body(self, key: str, keys: dict[str, Meta]) -> bytes | None:
        """The body of a small object the listing ``keys`` names; fetched only when its ETag
        changed since this object last read it. None when absent."""
        meta = keys.get(key)
        if meta is None:
            return None
        cached = self._docs.get(key)
        if cached is not None and meta.etag and cached[0] == meta.etag:
            return cached[1]
        got = await self._run(f"reading {key}", self._client.get, key)
        if got is None:
            return None  # deleted since it was listed
        body, etag = got
        self._docs[key] = (etag, body)
        return body

    def _where(self, key: str) -> str:
        return f"{self._url}/{key}"

    # -- desired state -------------------------------------------------------------------------

    async def read_spec(self) -> ClusterSpec | None:
        body = await self._known(SPEC_KEY, "cluster spec")
        if body is None:
            return None
        return decode(
            ClusterSpec.from_json, parse_document(body, self._where(SPEC_KEY)), self._where(SPEC_KEY)
        )

    async def write_spec(self, spec: ClusterSpec) -> None:
        await self._control_keys(fresh=True)  # never write into a store that has gone away
        await self._put(SPEC_KEY, encode_proto_json(spec.to_json()))

    async def read_created(self) -> int | None:
        body = await self._known(CREATED_KEY, "created marker")
        if body is None:
            return None
        where = self._where(CREATED_KEY)
        return decode(created_timestamp, parse_document(body, where), where)

    async def write_created(self, timestamp_nanos: int) -> None:
        await self._control_keys(fresh=True)
        await self._put(CREATED_KEY, created_bytes(timestamp_nanos))

    async def create_created_marker(self, timestamp_nanos: int) -> bool:
        await self._control_keys(fresh=True)
        await self._require_create_if_absent()
        return await self._put(CREATED_KEY, created_bytes(timestamp_nanos), create=True)

    async def _known(self, key: str, what: str) -> bytes | None:
        """The body of the spec or marker, None while it was never there; once read, its
        absence is an error."""
        body = await self._body(key, await self._control_keys())
        if body is not None:
            self._seen.add(key)
        elif key in self._seen:
            raise StoreError(
                f"{what} {self._where(key)} has gone away (it was read before); nothing is changed until it is back"
            )
        return body

    async def _put(self, key: str, data: bytes, create: bool = False) -> bool:
        etag = await self._run(f"writing {key}", partial(self._client.put, key, data, create=create))
        if etag is None:
            return False
        self._remember(key, etag, len(data), data)
        return True

    # -- claims --------------------------------------------------------------------------------

    async def claim(self, key: str, body: bytes) -> bool:
        await self._require_folder(self._key(key))
        await self._require_create_if_absent()
        return await self._put(self._key(key), body, create=True)

    async def read_claim(self, key: str) -> bytes | None:
        got = await self._run(f"reading {key}", self._client.get, self._key(key))
        return None if got is None else got[0]

    async def write_claim(self, key: str, body: bytes) -> None:
        await self._require_folder(self._key(key))
        await self._put(self._key(key), body)

    def _key(self, key: str) -> str:
        return "/".join(layout.check_component(part, "store key") for part in key.split("/"))

    async def _require_folder(self, key: str) -> None:
        """An object goes only into a folder that holds objects (a command removed meanwhile is
        not brought back as a folder holding only our file)."""
        folder = key.rpartition("/")[0]
        if folder and not await self._run(f"listing {folder}", self._client.list, folder):
            raise StoreError(
                f"cannot write {self._where(key)}: {self._where(folder)} does not exist (any more)"
            )

    async def _require_create_if_absent(self) -> None:
        problem = await self.check_create_if_absent()
        if problem is not None:
            raise StoreError(problem)

    async def check_create_if_absent(self) -> str | None:
        """Asked of the store once, by creating a probe object twice; a store that cannot be
        reached raises StoreError (and is asked again next time)."""
        if self._create_if_absent is None:
            self._create_if_absent = await self._run("checking create-if-absent writes", self._probe)
        return None if self._create_if_absent == "ok" else self._create_if_absent

    def _probe(self) -> str:
        key = PROBE_PREFIX + secrets.token_hex(8)
        self._client.put(key, b"", create=True)
        try:
            second = self._client.put(key, b"", create=True)
        finally:
            self._client.delete([key])
        if second is None:
            return "ok"
        return (
            f"backup store {self._url} ignores create-if-absent writes (a probe object was created "
            "twice; the server does not honour If-None-Match): refusing to create or restore a "
            "cluster on it, since two leaders could both win; use a server that supports conditional writes"
        )

    # -- commands ------------------------------------------------------------------------------

    async def list_commands(self) -> CommandListing:
        keys = await self._control_keys()
        folders: dict[str, set[str]] = {}
        for key in keys:
            parts = key.split("/")
            if len(parts) == 3 and not parts[1].startswith("."):
                folders.setdefault(parts[1], set()).add(parts[2])
        commands: list[Command] = []
        broken: dict[str, str] = {}
        failed: dict[CommandName, FailedCommand] = {}
        for folder, files in sorted(folders.items()):
            if layout.COMMAND_FILE not in files:
                continue
            key = f"{layout.CONTROL_DIR}/{folder}/{layout.COMMAND_FILE}"
            try:
                body = await self._body(key, keys)
                if body is None:
                    continue
                name = parse_command_name(folder, "command folder")
                where = self._where(key)
                cmd = decode(partial(Command.from_json, name=name), parse_document(body, where), where)
            except InvalidData as e:
                broken[folder] = str(e)
                continue
            failure = await self._failure(f"{layout.CONTROL_DIR}/{folder}/{layout.FAILED_FILE}", keys)
            if failure is None:
                commands.append(cmd)
            else:
                failed[name] = FailedCommand(cmd, *failure)
        commands.sort(key=lambda c: (c.timestamp, c.name))
        return CommandListing(commands=commands, broken=broken, failed=failed)

    async def _failure(self, key: str, keys: dict[str, Meta]) -> tuple[str, str] | None:
        body = await self._body(key, keys)
        if body is None:
            return None
        try:
            return parse_failure(parse_document(body, self._where(key)))
        except InvalidData as e:
            return unreadable_failure(e)

    async def add_command(self, cmd: Command) -> CommandName:
        when = datetime.fromtimestamp(cmd.timestamp // 1_000_000_000, UTC)
        data = encode_proto_json(cmd.to_json())
        keys = dict(await self._control_keys(fresh=True))
        while True:
            # The original always uses sequence 000000; later ones only break ties within a second.
            name = layout.next_name(_folders(keys, layout.CONTROL_DIR), when, first_seq=0)
            key = layout.command_file_key(name, layout.COMMAND_FILE)
            if await self._put(key, data, create=True):
                return CommandName(name)
            keys[key] = Meta("", 0)  # taken by a concurrent writer since we looked: look again

    async def remove_command(self, name: CommandName) -> None:
        folder = f"{layout.CONTROL_DIR}/{layout.check_component(name, 'command')}"
        await self._remove_folder(folder, [f"{folder}/{layout.COMMAND_FILE}"])

    async def mark_command_failed(self, name: str, reason: str, when: datetime) -> None:
        key = layout.command_file_key(name, layout.FAILED_FILE)
        await self._require_folder(key)
        await self._put(key, failure_bytes(reason, when))

    async def _remove_folder(self, folder: str, first: list[str]) -> None:
        """Delete ``first`` (in order), then the rest of the folder."""
        keys = await self._run(f"listing {folder}", self._client.list, folder)
        for key in first:
            if key in keys:
                await self._run(f"deleting {key}", self._client.delete, [key])
                self._forget([key])
        rest = sorted(set(keys) - set(first))
        await self._run(f"deleting {folder}", self._client.delete, rest)
        self._forget(rest)

    # -- backups -------------------------------------------------------------------------------

    async def list_backups(self) -> list[BackupName]:
        keys = await self._all_keys()
        found = {
            name
            for key in keys
            if (parts := key.split("/"))
            and len(parts) == 2
            and parts[1] == layout.META_FILE
            and (name := layout.as_backup_name(parts[0]))
        }
        return sorted(found, key=name_time)

    async def new_backup_name(self, now: datetime) -> BackupName:
        keys = await self._all_keys(fresh=True)
        return BackupName(layout.next_name(_folders(keys, ""), now, first_seq=1))

    async def write_backup(self, name: BackupName, files: dict[str, Path], info: BackupInfo) -> BackupInfo:
        if layout.parse_name(name) is None:
            raise StoreError(f"invalid backup name {name!r}: expected e.g. 2019-01-14T15:26:45Z-000001")
        for filename in files:
            layout.check_component(filename, "backup file")
            if filename in (layout.META_FILE, layout.CHECKSUMS_FILE):
                raise StoreError(f"backup file name {filename!r} is reserved by the store")
        keys = await self._all_keys(fresh=True)
        if name in _folders(keys, ""):
            raise StoreError(f"backup {name} already exists in {self._url}")
        sizes = await trio.to_thread.run_sync(_sizes, name, self._url, files)
        meta = encode_proto_json(info.to_json())
        written = await self._run(
            f"writing backup {name}",
            self._write_backup,
            name,
            files,
            meta,
            timeout=bulk_timeout(self.timeout, sum(sizes.values())),
        )
        for key, size in written.items():
            self._remember(key, "", size)
        return info.with_checksums(dict(written.sums))

    def _write_backup(self, name: str, files: dict[str, Path], meta: bytes) -> _Written:
        """Data files first, then SHA256SUMS, the meta last: a backup is listed once its meta
        exists. What was uploaded is deleted again when a later step fails."""
        written = _Written()
        try:
            for filename, src in sorted(files.items()):
                key = f"{name}/{filename}"
                written.sums[filename] = self._client.upload(key, src)
                written[key] = src.stat().st_size
            for filename, data in (
                (layout.CHECKSUMS_FILE, checksums_bytes(written.sums)),
                (layout.META_FILE, meta),
            ):
                key = f"{name}/{filename}"
                self._client.put(key, data)
                written[key] = len(data)
        except BaseException:
            try:
                self._client.delete(sorted(written))
            except StoreError as e:
                log.warning("cannot remove the parts of the failed backup %s: %s", name, e)
            raise
        return written

    async def read_backup_info(self, name: BackupName) -> BackupInfo:
        folder = layout.check_component(name, "backup")
        meta_key = f"{folder}/{layout.META_FILE}"
        got = await self._run(f"reading backup {name}", self._client.get, meta_key)
        if got is None:
            raise StoreError(f"no backup named {name} in {self._url} (missing {self._where(meta_key)})")
        info = decode(
            BackupInfo.from_json, parse_document(got[0], self._where(meta_key)), self._where(meta_key)
        )
        sums_key = f"{folder}/{layout.CHECKSUMS_FILE}"
        sums = await self._run(f"reading backup {name}", self._client.get, sums_key)
        # Backups the original wrote have no SHA256SUMS: nothing to verify.
        return info.with_checksums({} if sums is None else parse_checksums(sums[0], self._where(sums_key)))

    async def fetch_backup_file(self, name: BackupName, filename: str, dest: Path) -> Path:
        await self._read_file(
            name, filename, f"fetching {filename} of backup {name}", self._client.download, dest
        )
        return dest

    async def read_backup_file(
        self, name: BackupName, filename: str, sink: Callable[[bytes], object]
    ) -> None:
        what = f"reading {filename} of backup {name}"
        try:
            await self._read_file(name, filename, what, self._client.stream, sink)
        except OSError as e:  # the sink's
            raise StoreError(f"cannot read {filename} of backup {name}: {e.strerror or e}") from None

    async def _read_file(
        self,
        name: BackupName,
        filename: str,
        what: str,
        read: Callable[[str, T, str | None], str | None],
        to: T,
    ) -> None:
        """``read(key, to, expected sha256)`` for one file of a backup, under a deadline its size sets."""
        key = f"{layout.check_component(name, 'backup')}/{layout.check_component(filename, 'backup file')}"
        info = await self.read_backup_info(name)
        listed = await self._run(f"listing backup {name}", self._client.list, name)
        if key not in listed:
            raise StoreError(f"backup {name} in {self._url} has no file {filename}")
        got = await self._run(
            what,
            read,
            key,
            to,
            info.checksums.get(filename),
            timeout=bulk_timeout(self.timeout, listed[key].size),
        )
        if got is None:
            raise StoreError(f"backup {name} in {self._url} has no file {filename}")

    async def delete_backup(self, name: BackupName) -> None:
        folder = layout.check_component(name, "backup")
        # Meta first: a delete cut short leaves an unlisted folder, never a listed broken backup.
        await self._remove_folder(folder, [f"{folder}/{layout.META_FILE}"])

    async def backup_files(self, name: BackupName) -> dict[str, int]:
        folder = layout.check_component(name, "backup")
        keys = await self._run(f"listing backup {name}", self._client.list, folder)
        if not keys:
            raise StoreError(f"no backup named {name} in {self._url}")
        return {key.split("/", 1)[1]: meta.size for key, meta in keys.items() if key.count("/") == 1}

    async def read_backup_extra(self, name: BackupName, filename: str) -> bytes | None:
        key = self._extra_key(name, filename)
        got = await self._run(f"reading {filename} of backup {name}", self._client.get, key)
        return None if got is None else got[0]

    async def write_backup_extra(self, name: BackupName, filename: str, body: bytes) -> None:
        key = self._extra_key(name, filename)
        # Only into a complete backup: one deleted meanwhile is not brought back as a folder
        # holding our file alone.
        meta_key = f"{layout.check_component(name, 'backup')}/{layout.META_FILE}"
        if await self._run(f"reading backup {name}", self._client.get, meta_key) is None:
            raise StoreError(f"backup {name} is not in {self._url} (any more)")
        await self._put(key, body)

    def _extra_key(self, name: BackupName, filename: str) -> str:
        layout.check_component(filename, "backup file")
        if not filename.startswith(layout.OUR_PREFIX):
            raise StoreError(f"backup file {filename!r} is not one of ours ({layout.OUR_PREFIX}*)")
        return f"{layout.check_component(name, 'backup')}/{filename}"

    # -- status and backup requests (files of ours under control/) ----------------------------

    async def read_status(self) -> bytes | None:
        got = await self._run("reading the status", self._client.get, STATUS_KEY)
        return None if got is None else got[0]

    async def write_status(self, body: bytes) -> None:
        await self._put(STATUS_KEY, body)

    async def request_backup(self, now: datetime) -> str:
        body = encode_go_json({"time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        await self._require_create_if_absent()
        seq = 0
        while True:
            name = layout.format_name(now, seq)
            if await self._put(f"{layout.CONTROL_DIR}/{layout.backup_request_file(name)}", body, create=True):
                return name
            seq += 1  # another request in the same second

    async def list_backup_requests(self) -> list[str]:
        keys = await self._control_keys()
        names = [
            n
            for key in keys
            if (parts := key.split("/")) and len(parts) == 2 and (n := layout.backup_request_name(parts[1]))
        ]
        return sorted(names, key=lambda n: layout.parse_name(n) or ())

    async def remove_backup_requests(self, names: Collection[str]) -> None:
        keys = [
            f"{layout.CONTROL_DIR}/{layout.check_component(layout.backup_request_file(n), 'request')}" for n in names
        ]
        if keys:
            await self._run("removing backup requests", self._client.delete, keys)
            self._forget(keys)


class _Written(dict[str, int]):
    """Keys uploaded so far (-> size), and the data files' sha256 checksums."""

    def __init__(self) -> None:
        super().__init__()
        self.sums: dict[str, str] = {}


def _sizes(name: str, url: str, files: dict[str, Path]) -> dict[str, int]:
    """Each source file's size; one that cannot be read fails the backup before any upload."""
    try:
        return {fn: src.stat().st_size for fn, src in files.items()}
    except OSError as e:
        raise StoreError(f"cannot write backup {name} to {url}: {e}") from None


def _folders(keys: dict[str, Meta], parent: str) -> set[str]:
    """Names of the folders directly under ``parent`` ("" for the top) that hold any object."""
    start = f"{parent}/" if parent else ""
    return {
        key[len(start) :].split("/")[0] for key in keys if key.startswith(start) and "/" in key[len(start) :]
    }
