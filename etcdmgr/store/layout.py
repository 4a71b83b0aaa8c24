"""Where things live in a backup store (kept identical to etcd-manager's layout).

    control/etcd-cluster-spec              desired ClusterSpec
    control/etcd-cluster-created           {"timestamp": <unix nanos>}; absent = new cluster
    control/<RFC3339 UTC>-<seq>/_command.json
    control/<RFC3339 UTC>-<seq>/etcdmgr-claim.json   ours: the leader carrying the command out
    control/<RFC3339 UTC>-<seq>/etcdmgr-failed.json  ours: why the command failed, and when
    control/etcdmgr-status.json            ours: what the leader saw and did last (`ctl status`)
    control/etcdmgr-backup-now-<RFC3339 UTC>-<seq>.json  ours: a backup asked for (`ctl backup-now`)
    <RFC3339 UTC>-<seq>/etcd.backup.gz     gzip of an etcd v3 snapshot
    <RFC3339 UTC>-<seq>/etcdmgr-verify.json  ours: the live member's figures when it was taken
    <RFC3339 UTC>-<seq>/SHA256SUMS         ours: `sha256sum -c` lines for the data files
    <RFC3339 UTC>-<seq>/_etcd_backup.meta  written last: a backup exists once this does
    <RFC3339 UTC>-<seq>/etcdmgr-drill.json ours, written later: how a restore drill of it went

The original lists only `_command.json` files under control/ (any depth) and only folders
holding `_etcd_backup.meta` as backups, so it never sees our files.

Names look like 2019-01-14T15:26:45Z-000001: the UTC second, then a 6-digit sequence that
tells apart backups taken within the same second.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import NAME_SECOND_FORMAT, BackupName, name_time, parse_backup_name
from etcdmgr.store.errors import StoreError

CONTROL_DIR = "control"
SPEC_FILE = "etcd-cluster-spec"
CREATED_FILE = "etcd-cluster-created"
COMMAND_FILE = "_command.json"
# Our own files beside a command: the original reads _command.json strictly, so nothing is added there.
CLAIM_FILE = "etcdmgr-claim.json"
FAILED_FILE = "etcdmgr-failed.json"
STATUS_FILE = "etcdmgr-status.json"
BACKUP_REQUEST_PREFIX = "etcdmgr-backup-now-"
BACKUP_REQUEST_SUFFIX = ".json"
DATA_FILE = "etcd.backup.gz"
VERIFY_FILE = "etcdmgr-verify.json"
DRILL_FILE = "etcdmgr-drill.json"
OUR_PREFIX = "etcdmgr-"  # files of ours that may be added to a backup after it is complete
META_FILE = "_etcd_backup.meta"
CHECKSUMS_FILE = "SHA256SUMS"


def utc_second(when: datetime) -> datetime:
    """``when`` (timezone-aware) in UTC, cut to the second: the time part of a name."""
    if when.tzinfo is None:
        raise ValueError("a backup or command name needs a timezone-aware time")
    return when.astimezone(UTC).replace(microsecond=0)


def format_name(when: datetime, seq: int) -> str:
    """'2019-01-14T15:26:45Z-000001' for ``when`` (timezone-aware) and ``seq``."""
    return f"{utc_second(when).strftime(NAME_SECOND_FORMAT)}Z-{seq:06d}"


def next_name(used: Iterable[str], now: datetime, first_seq: int) -> str:
    """The name for ``now`` with a sequence above every one of ``used`` in that second."""
    second = utc_second(now)
    seqs = [p[1] for n in used if (p := parse_name(n)) and p[0] == second]
    return format_name(second, max([first_seq - 1, *seqs]) + 1)


def as_backup_name(folder: str) -> BackupName | None:
    """The folder's name as a backup name, or None: other folders of the store are no backups."""
    try:
        return parse_backup_name(folder, "folder")
    except InvalidData:
        return None


def parse_name(name: str) -> tuple[datetime, int] | None:
    """(UTC time, sequence) of a backup or command name, or None when it is not of that form."""
    checked = as_backup_name(name)
    return None if checked is None else name_time(checked)


def check_component(name: str, what: str) -> str:
    """Refuse anything but one plain path component, so names cannot escape the store."""
    bad = (
        not name
        or name in (".", "..")
        or name.startswith(".")  # our temp files and hidden files
        or any(c in name for c in "/\\\0")
    )
    if bad:
        raise StoreError(f"invalid {what} name {name!r}: must be a single file name")
    return name


def command_file_key(command: str, filename: str) -> str:
    """The store key of a file in a command's folder, e.g. for a claim on the command."""
    return f"{CONTROL_DIR}/{check_component(command, 'command')}/{check_component(filename, 'command file')}"


def backup_request_file(name: str) -> str:
    """'etcdmgr-backup-now-2019-01-14T15:26:45Z-000000.json' for request ``name``."""
    return f"{BACKUP_REQUEST_PREFIX}{name}{BACKUP_REQUEST_SUFFIX}"


def backup_request_name(filename: str) -> str | None:
    """The request name in a control/ file name, or None when it is no backup request."""
    if not (filename.startswith(BACKUP_REQUEST_PREFIX) and filename.endswith(BACKUP_REQUEST_SUFFIX)):
        return None
    name = filename[len(BACKUP_REQUEST_PREFIX) : -len(BACKUP_REQUEST_SUFFIX)]
    return name if parse_name(name) is not None else None
