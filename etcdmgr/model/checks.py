"""What proves a backup restores: figures of the keyspace, and the record of a restore drill.

Both are files of our own in a backup's folder (the original never reads them):
`etcdmgr-verify.json` holds the figures the live member showed when the backup was taken, and
`etcdmgr-drill.json` what a throw-away restore of the backup showed, and whether they matched.
A snapshot's own hash (`snapshot status`) covers the db file, which a restore rewrites, so the
figures compared are the revision, the number of keys and `endpoint hashkv --rev=<revision>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from etcdmgr.model.errors import InvalidData
from etcdmgr.model.fields import as_dict, nested, optional, parse_bool, parse_int, parse_text, required
from etcdmgr.model.ids import PeerId, parse_peer_id
from etcdmgr.model.values import EtcdVersion, parse_etcd_version, parse_seconds, parse_unix_seconds

MAX_REVISION = 2**63 - 1


def _revision(value: object, field: str) -> int:
    return parse_int(value, field, low=0, high=MAX_REVISION)


def _hash(value: object, field: str) -> int:
    return parse_int(value, field, low=0, high=2**32 - 1)  # etcd's HashKV is a crc32


def decode(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise InvalidData(f"{what}: not JSON: {e}") from None


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"


@dataclass(frozen=True)
class KeyspaceFigures:
    """What one member showed of its keyspace at ``revision``."""

    revision: int
    keys: int | None = None  # keys at that revision (`get "" --prefix --rev`'s count)
    hash: int | None = None  # `endpoint hashkv --rev=<revision>`; None: compacted past it
    compact_revision: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"revision": self.revision}
        for key, value in (
            ("keys", self.keys),
            ("hash", self.hash),
            ("compactRevision", self.compact_revision),
        ):
            if value is not None:
                doc[key] = value
        return doc

    @classmethod
    def from_json(cls, data: Any) -> KeyspaceFigures:
        what = "keyspace figures"
        d = as_dict(data, what)
        return cls(
            revision=required(d, "revision", _revision, what),
            keys=optional(d, "keys", _revision, what),
            hash=optional(d, "hash", _hash, what),
            compact_revision=optional(d, "compactRevision", _revision, what),
        )

    def to_bytes(self) -> bytes:
        return encode(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyspaceFigures:
        return cls.from_json(decode(data, "keyspace figures"))

    def text(self) -> str:
        """'revision 53, 49 keys, hash 2678838530' (what is known)."""
        parts = [f"revision {self.revision}"]
        if self.keys is not None:
            parts.append(f"{self.keys} keys")
        if self.hash is not None:
            parts.append(f"hash {self.hash}")
        return ", ".join(parts)


def figure_differences(expected: KeyspaceFigures, actual: KeyspaceFigures) -> list[str]:
    """What a restore showed differently from what was recorded (figures not recorded are not
    compared); [] when everything recorded matches."""
    out = []
    if actual.revision != expected.revision:
        out.append(f"revision is {actual.revision}, the backup was taken at {expected.revision}")
    if expected.keys is not None and actual.keys != expected.keys:
        out.append(f"{actual.keys} keys, the live member had {expected.keys}")
    if expected.hash is not None and actual.hash != expected.hash:
        out.append(
            f"hashkv at revision {expected.revision} is {actual.hash}, the live member's was {expected.hash}"
        )
    return out


@dataclass(frozen=True)
class DrillRecord:
    """How a restore drill of one backup went."""

    passed: bool
    reason: str  # what did not match or failed; what matched when it passed
    node: PeerId  # the node that ran it
    time: int  # unix seconds when it finished
    seconds: float  # how long it took
    etcd_version: EtcdVersion | None = None  # the etcd the backup was restored with
    figures: KeyspaceFigures | None = None  # what the restored member showed

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "passed": self.passed,
            "reason": self.reason,
            "node": self.node,
            "time": self.time,
            "seconds": round(self.seconds, 3),
        }
        if self.etcd_version is not None:
            doc["etcdVersion"] = self.etcd_version
        if self.figures is not None:
            doc["figures"] = self.figures.to_json()
        return doc

    @classmethod
    def from_json(cls, data: Any) -> DrillRecord:
        what = "drill record"
        d = as_dict(data, what)
        return cls(
            passed=required(d, "passed", parse_bool, what),
            reason=required(d, "reason", parse_text, what),
            node=required(d, "node", parse_peer_id, what),
            time=required(d, "time", parse_unix_seconds, what),
            seconds=required(d, "seconds", parse_seconds, what),
            etcd_version=optional(d, "etcdVersion", parse_etcd_version, what),
            figures=optional(d, "figures", nested(KeyspaceFigures.from_json), what),
        )

    def to_bytes(self) -> bytes:
        return encode(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> DrillRecord:
        return cls.from_json(decode(data, "drill record"))

    @property
    def result(self) -> str:
        return "passed" if self.passed else "failed"
