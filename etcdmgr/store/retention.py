"""Which backups to delete (pure; the caller lists and deletes).

The original's rules: keep everything younger than an hour, the earliest backup of each hour
for the hourly retention (7 days), the earliest of each UTC day for the daily retention
(2 years), delete the rest; names that do not parse are never deleted. Two improvements:
the newest backup is always kept (the original would delete it once backups stopped for
longer than the daily retention), and backups of the same second are told apart by their
sequence (the original keyed them by time only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from etcdmgr.model.durations import parse_human_duration
from etcdmgr.model.errors import InvalidData
from etcdmgr.store.layout import parse_name

HOURLY_ENV = "ETCD_MANAGER_HOURLY_BACKUPS_RETENTION"
DAILY_ENV = "ETCD_MANAGER_DAILY_BACKUPS_RETENTION"
DEFAULT_HOURLY = timedelta(days=7)
DEFAULT_DAILY = timedelta(days=2 * 365)
KEEP_ALL_YOUNGER_THAN = timedelta(hours=1)
N = TypeVar("N", bound=str)  # plain names, or checked ones


@dataclass(frozen=True)
class Retention:
    hourly: timedelta = DEFAULT_HOURLY
    daily: timedelta = DEFAULT_DAILY


def retention_from_env(environ: Mapping[str, str]) -> Retention:
    """Read the original's variables ("168h", "7d", "2y"; unset or empty = default)."""
    values: dict[str, timedelta] = {}
    for key, var in (("hourly", HOURLY_ENV), ("daily", DAILY_ENV)):
        text = environ.get(var, "")
        if not text:
            continue
        try:
            value = parse_human_duration(text)
        except InvalidData as e:
            raise InvalidData(f"{var}={text!r}: {e}") from None
        if value < timedelta(0):
            raise InvalidData(f"{var}={text!r}: a retention cannot be negative")
        values[key] = value
    return Retention(**values)


def backups_to_delete(
    names: Sequence[N],
    now: datetime,
    hourly_retention: timedelta = DEFAULT_HOURLY,
    daily_retention: timedelta = DEFAULT_DAILY,
) -> list[N]:
    """The names to delete, in the order given. ``now`` must be timezone-aware."""
    parsed = {name: p for name in names if (p := parse_name(name)) is not None}
    if not parsed:
        return []
    keep = {max(parsed, key=lambda n: parsed[n])}
    earliest: dict[tuple[str, datetime], N] = {}  # (bucket kind, bucket start) -> name
    for name, (when, seq) in parsed.items():
        age = now - when
        if age < KEEP_ALL_YOUNGER_THAN:
            keep.add(name)
            continue
        if age < hourly_retention:
            bucket = ("hour", when.replace(minute=0, second=0))
        elif age < daily_retention:
            bucket = ("day", when.replace(hour=0, minute=0, second=0))
        else:
            continue
        held = earliest.get(bucket)
        if held is None or parsed[held] > (when, seq):
            earliest[bucket] = name
    keep.update(earliest.values())
    return [n for n in names if n in parsed and n not in keep]
