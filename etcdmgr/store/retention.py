"""Which backups to delete, and how old the newest one is (pure; the caller lists and deletes).

The original's rules (``expired``): keep everything younger than an hour, the earliest backup
of each hour for the hourly retention (7 days), the earliest of each UTC day for the daily
retention (2 years), delete the rest; names that do not parse are never deleted. Backups of the
same second are told apart by their sequence (the original keyed them by time only).

The clock deciding ages may be wrong (a VM booted with a bad RTC, an NTP step), so
``backups_to_delete`` deletes only what the original's rules expire AND these rules, which do
not read the clock, allow:
- the ``keep_newest`` (10) newest backups are kept, whatever their age;
- the retention windows also count in backups: the earliest backup of each of the most recent
  hours that hold a backup, as many as the hourly retention spans (7 days: 169), is kept, and
  likewise for days, so a clock jumped forward cannot thin or empty the history;
- one pass deletes at most ``max_share`` (half) of the backups, oldest first.
In steady operation (a backup every interval) these keep only a few more than the original's
rules would: the 10 newest, and at most one backup at the edge of each window.
A backup named in the future is kept, and ignored when deciding whether a backup is due.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
KEEP_NEWEST = 10
MAX_SHARE = 0.5
# Backup names come from the clock of whichever leader took them: a little skew is normal.
FUTURE_TOLERANCE = timedelta(minutes=5)


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
    keep_newest: int = KEEP_NEWEST,
    max_share: float = MAX_SHARE,
) -> list[N]:
    """The names to delete, in the order given: expired by the original's rules, and allowed
    by the rules that do not trust the clock. ``now`` must be timezone-aware."""
    parsed = {name: p for name in names if (p := parse_name(name)) is not None}
    oldest_first = sorted(parsed, key=lambda n: parsed[n])
    keep = set(oldest_first[max(0, len(oldest_first) - keep_newest) :])
    # +1: a window of 7 days touches 169 clock hours (and 2 years, 731 days).
    keep |= _earliest_of_recent(oldest_first, parsed, _hour, hourly_retention // timedelta(hours=1) + 1)
    keep |= _earliest_of_recent(oldest_first, parsed, _day, daily_retention // timedelta(days=1) + 1)
    doomed = set(expired(names, now, hourly_retention, daily_retention)) - keep
    allowed = set([n for n in oldest_first if n in doomed][: int(len(parsed) * max_share)])
    return [n for n in names if n in allowed]


def newest_backup_age(names: Sequence[N], now: datetime) -> tuple[timedelta | None, list[N]]:
    """(Age of the newest backup, None when there is none; the names dated in the future, which
    are left out). A name a little ahead of ``now`` (clock skew between leaders) counts as new."""
    parsed = {name: p for name in names if (p := parse_name(name)) is not None}
    future = sorted(n for n, (when, _) in parsed.items() if when > now + FUTURE_TOLERANCE)
    times = [when for n, (when, _) in parsed.items() if n not in future]
    if not times:
        return None, future
    return max(now - max(times), timedelta(0)), future


def _hour(when: datetime) -> datetime:
    return when.replace(minute=0, second=0)


def _day(when: datetime) -> datetime:
    return when.replace(hour=0, minute=0, second=0)


def _earliest_of_recent(
    oldest_first: list[N],
    parsed: dict[N, tuple[datetime, int]],
    bucket: Callable[[datetime], datetime],
    count: int,
) -> set[N]:
    """The earliest name of each of the ``count`` most recent buckets that hold a name."""
    earliest: dict[datetime, N] = {}
    for name in reversed(oldest_first):
        key = bucket(parsed[name][0])
        if key not in earliest and len(earliest) >= count:
            break
        earliest[key] = name  # walking back in time: the last one seen is the earliest
    return set(earliest.values())


def expired(
    names: Sequence[N],
    now: datetime,
    hourly_retention: timedelta = DEFAULT_HOURLY,
    daily_retention: timedelta = DEFAULT_DAILY,
) -> list[N]:
    """The names the original's rules delete at ``now``, in the order given (the newest is
    always kept: the original would delete it once backups stopped for longer than the daily
    retention)."""
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
