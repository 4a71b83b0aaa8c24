"""`ctl list-backups` with details, and `ctl backup-now` (optionally waiting for the backup)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from etcdmgr.cli import ctl_text as text
from etcdmgr.cli.goflags import UsageError
from etcdmgr.model import ClusterSpec, EtcdmgrError, InvalidData
from etcdmgr.model.checks import DrillRecord, KeyspaceFigures
from etcdmgr.model.durations import parse_duration
from etcdmgr.model.ids import BackupName, name_time
from etcdmgr.model.status import ClusterStatus
from etcdmgr.store import BackupStore
from etcdmgr.store.layout import CHECKSUMS_FILE, DRILL_FILE, VERIFY_FILE

POLL = 1.0  # seconds between two looks at the store while waiting


class BackupWaitFailed(EtcdmgrError):
    """`backup-now --wait` saw no backup: the message says why."""


def since_time(value: str, now: datetime) -> datetime:
    """--since: a duration back from now (24h) or a time (2024-01-02T15:04:05Z, 2024-01-02)."""
    try:
        return now - parse_duration(value)
    except InvalidData:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since takes a duration (24h) or a time (2024-01-02T15:04:05Z), not {value!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def limit_count(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"--limit takes a positive number, not {value!r}")
    return int(value)


def select(names: list[BackupName], since: datetime | None, limit: int | None) -> list[BackupName]:
    """Backups taken since ``since``, at most the ``limit`` newest, oldest first."""
    chosen = [n for n in names if since is None or name_time(n)[0] >= since]
    return chosen[-limit:] if limit else chosen


@dataclass(frozen=True)
class BackupDetails:
    name: BackupName
    time: int  # unix seconds it was taken
    size: int
    etcd_version: str
    spec: ClusterSpec | None
    checksums: bool
    figures: KeyspaceFigures | None
    drill: DrillRecord | None
    problem: str = ""

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "time": text.utc(self.time),
            "ageSeconds": round(now - self.time),
            "size": self.size,
            "etcdVersion": self.etcd_version,
            "spec": self.spec.to_json() if self.spec else None,
            "checksums": self.checksums,
            "figures": self.figures.to_json() if self.figures else None,
            "drill": self.drill.to_json() if self.drill else None,
            **({"problem": self.problem} if self.problem else {}),
        }


async def _extra(store: BackupStore, name: BackupName, filename: str) -> bytes | None:
    try:
        return await store.read_backup_extra(name, filename)
    except EtcdmgrError:
        return None


async def details(store: BackupStore, name: BackupName) -> BackupDetails:
    """What the store holds about one backup; what cannot be read is left out and named."""
    taken = int(name_time(name)[0].timestamp())
    try:
        info = await store.read_backup_info(name)
        files = await store.backup_files(name)
    except EtcdmgrError as e:
        return BackupDetails(name, taken, 0, "", None, False, None, None, problem=str(e))
    figures = drill = None
    problems = []
    try:
        raw = await _extra(store, name, VERIFY_FILE)
        figures = KeyspaceFigures.from_bytes(raw) if raw else None
        raw = await _extra(store, name, DRILL_FILE)
        drill = DrillRecord.from_bytes(raw) if raw else None
    except InvalidData as e:
        problems.append(str(e))
    return BackupDetails(
        name,
        info.timestamp or taken,
        sum(files.values()),
        info.etcd_version,
        info.cluster_spec,
        CHECKSUMS_FILE in files,
        figures,
        drill,
        "; ".join(problems),
    )


def _spec_text(d: BackupDetails) -> str:
    if d.spec is None:
        return "-"
    if d.spec.etcd_version == d.etcd_version:
        return f"{d.spec.member_count} members"
    return f"{d.spec.member_count} members, {d.spec.etcd_version}"


def _drill_text(r: DrillRecord | None, now: float) -> str:
    if r is None:
        return "-"
    return f"{'passed' if r.passed else 'FAILED'} {text.age(now - r.time)} ago"


def wide_table(rows: list[BackupDetails], now: float) -> str:
    headers = ["NAME", "AGE", "SIZE", "ETCD", "SPEC", "CHECKSUMS", "REVISION", "KEYS", "DRILL", "PROBLEM"]
    return text.table(
        headers,
        [
            [
                d.name,
                text.age(now - d.time),
                text.size(d.size),
                d.etcd_version or "-",
                _spec_text(d),
                "yes" if d.checksums else "no",
                str(d.figures.revision) if d.figures else "-",
                str(d.figures.keys) if d.figures and d.figures.keys is not None else "-",
                _drill_text(d.drill, now),
                d.problem,
            ]
            for d in rows
        ],
    )


async def list_backups(store: BackupStore, output: str, since: str, limit: str) -> None:
    now = datetime.now(UTC)
    names = select(await store.list_backups(), since_time(since, now) if since else None, limit_count(limit))
    if output == "text":  # names only, as the original prints them
        for name in names:
            print(name)
        return
    rows = [await details(store, name) for name in names]
    if output == "json":
        print(json.dumps([d.to_json(now.timestamp()) for d in rows], indent=2, sort_keys=True))
    else:
        print(wide_table(rows, now.timestamp()))


async def _failure_since(store: BackupStore, started: float) -> str | None:
    """The leader's last backup failure after ``started`` (unix seconds), from its status."""
    try:
        raw = await store.read_status()
        status = ClusterStatus.from_bytes(raw) if raw else None
    except EtcdmgrError:
        return None
    failure = status.backup_failure if status else None
    if failure is None or failure.time < started:
        return None
    return f"leader {status.leader if status else '?'}: the backup failed: {failure.error}"


async def backup_now(store: BackupStore, wait: bool, timeout: timedelta) -> None:
    """Queue a backup; with ``wait``, print the new backup's name once the leader took it."""
    if await store.read_spec() is None:
        raise EtcdmgrError(f"no cluster spec in {store.url}: the daemons back up only a configured cluster")
    before = set(await store.list_backups())
    started = time.time()
    request = await store.request_backup(datetime.now(UTC))
    if not wait:
        print(f"requested backup {request}; the leader takes it within a cycle (see list-backups)")
        return
    print(f"requested backup {request}; waiting for the leader to take it", file=sys.stderr)
    import trio  # waiting needs the event loop (ctl_cmd runs --wait under trio)

    shown = None
    with trio.move_on_after(timeout.total_seconds()):
        while request in await store.list_backup_requests():
            failure = await _failure_since(store, started)
            if failure and failure != shown:
                print(f"{failure}; it tries again next cycle", file=sys.stderr)
                shown = failure
            await trio.sleep(POLL)
        new = [n for n in await store.list_backups() if n not in before]
        if not new:
            raise BackupWaitFailed(f"request {request} was taken, but no new backup is listed in {store.url}")
        print(new[-1])
        return
    raise BackupWaitFailed(
        f"no backup within {text.age(timeout.total_seconds())}; the request stays queued "
        f"(is a leader running? see ctl status)"
    )
