"""Identifiers as they arrive from peers, the stores, the state file and the command line.

Each kind has one parse function, called where the value enters the program; what it returns
is a distinct type (a NewType of str), so code inside never needs to check again, and mypy
refuses a raw string where a checked one is expected (e.g. a path component of the data dir).

Peer ids, member names (they are peer ids), cluster tokens, leader tokens and cluster names
share one pattern: 1 to 128 of A-Z a-z 0-9 '_' '.' '-', but not '.' or '..'. That takes in
what the original writes (URL-safe base64, which may start with '-' or '_') and what kops
writes (`etcd-a`), and keeps every value a single harmless path component and host name.
Backup and command names are the store's `<RFC3339 UTC second>-<seq>` folder names.
"""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, datetime
from typing import NewType

from etcdmgr.model.errors import InvalidData

PeerId = NewType("PeerId", str)
ClusterToken = NewType("ClusterToken", str)
LeaderToken = NewType("LeaderToken", str)
ClusterName = NewType("ClusterName", str)
BackupName = NewType("BackupName", str)
CommandName = NewType("CommandName", str)

_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_ID_RULE = "1-128 characters of A-Z a-z 0-9 _ . -, not '.' or '..'"
NAME_RE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})Z-(\d{1,9})")
NAME_SECOND_FORMAT = "%Y-%m-%dT%H:%M:%S"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _id(value: object, field: str, kind: str) -> str:
    if not isinstance(value, str):
        raise InvalidData(f"{field}: should be a {kind} (a string), got {type(value).__name__}")
    if not _ID_RE.fullmatch(value) or value in (".", ".."):
        raise InvalidData(f"{field}: {_shown(value)} is not a valid {kind} ({_ID_RULE})")
    return value


def parse_peer_id(value: object, field: str) -> PeerId:
    """A peer id; also every etcd member name, since members are named by their node's id."""
    return PeerId(_id(value, field, "peer id"))


def parse_cluster_token(value: object, field: str) -> ClusterToken:
    return ClusterToken(_id(value, field, "cluster token"))


def parse_leader_token(value: object, field: str) -> LeaderToken:
    return LeaderToken(_id(value, field, "leader token"))


def parse_cluster_name(value: object, field: str) -> ClusterName:
    return ClusterName(_id(value, field, "cluster name"))


def _store_name(value: object, field: str, kind: str) -> str:
    example = "2019-01-14T15:26:45Z-000001"
    if not isinstance(value, str):
        raise InvalidData(f"{field}: should be a {kind} (a string), got {type(value).__name__}")
    m = NAME_RE.fullmatch(value)
    try:
        if m is None:
            raise ValueError
        datetime.strptime(m.group(1), NAME_SECOND_FORMAT)
    except ValueError:
        raise InvalidData(f"{field}: {_shown(value)} is not a {kind} (e.g. {example})") from None
    return value


def parse_backup_name(value: object, field: str) -> BackupName:
    return BackupName(_store_name(value, field, "backup name"))


def parse_command_name(value: object, field: str) -> CommandName:
    return CommandName(_store_name(value, field, "command name"))


def name_time(name: BackupName | CommandName) -> tuple[datetime, int]:
    """(UTC second, sequence) of a checked backup or command name."""
    m = NAME_RE.fullmatch(name)
    assert m is not None, "only checked names get here"
    return datetime.strptime(m.group(1), NAME_SECOND_FORMAT).replace(tzinfo=UTC), int(m.group(2))


def new_peer_id() -> PeerId:
    """A random id, URL-safe base64 as the original makes them. Ours never start with '-' or '_':
    such an id can pass for a flag on a command line (etcdctl still gets `--` before names)."""
    while True:
        candidate = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if candidate[0].isalnum():
            return PeerId(candidate)


def new_cluster_token() -> ClusterToken:
    import secrets  # only a leader needs it: not imported by every ctl command

    return ClusterToken(secrets.token_urlsafe(16))


def new_leader_token() -> LeaderToken:
    import secrets

    return LeaderToken(secrets.token_urlsafe(16))
