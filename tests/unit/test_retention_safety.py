"""Retention and "is a backup due" never trust the clock: a clock jumped forward cannot empty the
history, a backup named in the future cannot stop backups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from etcdmgr.controller.observe import backup_age
from etcdmgr.store import FileStore
from etcdmgr.store.layout import META_FILE, format_name, parse_name
from etcdmgr.store.retention import (
    DEFAULT_DAILY,
    DEFAULT_HOURLY,
    KEEP_NEWEST,
    MAX_SHARE,
    backups_to_delete,
    expired,
    newest_backup_age,
)

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def every(interval: timedelta, count: int, newest: datetime = NOW) -> list[str]:
    """``count`` backup names, one per ``interval``, the newest at ``newest``; oldest first."""
    return [format_name(newest - i * interval, 1) for i in reversed(range(count))]


# -- the clock jumps -----------------------------------------------------------------------------


def test_a_clock_three_years_ahead_deletes_nothing_from_a_half_daily_history() -> None:
    # The review's probe: 54 half-daily backups, then `now` in December 2029 deleted 53.
    names = every(12 * H, 54)
    assert len(expired(names, NOW + 3 * 365 * D)) == 53, "what the original's rules alone would do"
    assert backups_to_delete(names, NOW + 3 * 365 * D) == []


def test_a_clock_ahead_thins_no_more_than_the_right_clock_would() -> None:
    names = every(15 * M, 4 * 24 * 10)  # ten days of backups every 15 minutes
    right = backups_to_delete(names, NOW, max_share=1.0)
    jumped = backups_to_delete(names, NOW + 3 * 365 * D)
    assert jumped, "the extra backups of each hour still go"
    assert len(jumped) <= len(names) * MAX_SHARE
    for unit in (H, D):
        covered = set(_buckets([n for n in names if n not in jumped], unit))
        assert covered >= set(_buckets([n for n in names if n not in right], unit)), (
            f"every {unit} that keeps a backup by the right clock keeps one"
        )


def test_a_clock_behind_deletes_nothing_newer_than_it() -> None:
    names = every(15 * M, 200)
    deleted = backups_to_delete(names, NOW - 30 * D)
    assert deleted == [], "every backup looks like it is from the future: all are kept"


def test_the_ten_newest_are_kept_whatever_their_age() -> None:
    names = every(M, 12, newest=NOW - 3 * 365 * D)  # one hour of one day, three years ago
    # The original's rules keep only the newest; the earliest of the hour and day is kept as
    # well, and the 10 newest: one is left to delete.
    assert backups_to_delete(names, NOW) == [names[1]]


def test_one_pass_deletes_at_most_half_oldest_first() -> None:
    names = every(M, 40, newest=NOW - 2 * D - 20 * M)  # 40 in one hour, two days ago
    assert len(expired(names, NOW)) == 38, "all but the earliest of the hour and the newest"
    deleted = backups_to_delete(names, NOW)
    assert deleted == names[1:21], "20 of 40, the oldest after the hour's earliest"


def test_unparseable_and_future_names_are_never_deleted() -> None:
    future = format_name(NOW + 4 * 365 * D, 1)
    names = ["garbage", future, *every(M, 40, newest=NOW - 2 * D)]
    deleted = backups_to_delete(names, NOW)
    assert "garbage" not in deleted and future not in deleted


# -- is a backup due ---------------------------------------------------------------------------------


def test_a_backup_named_in_the_future_does_not_count_as_the_newest() -> None:
    future = format_name(datetime(2031, 1, 1, tzinfo=UTC), 1)
    assert newest_backup_age([format_name(NOW - 20 * M, 1), future], NOW) == (20 * M, [future])
    assert newest_backup_age([future], NOW) == (None, [future]), "no usable backup: one is due now"
    assert newest_backup_age([], NOW) == (None, [])


def test_a_backup_a_little_ahead_counts_as_new() -> None:
    # Leaders' clocks differ by a few seconds: that is not a backup from the future.
    assert newest_backup_age([format_name(NOW + 2 * M, 1)], NOW) == (timedelta(0), [])


async def test_backup_age_in_the_store_ignores_and_reports_future_names(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    future = format_name(now + 5 * 365 * D, 1)
    recent = format_name(now - 3 * M, 1)
    for name in (future, recent):
        (tmp_path / name).mkdir()
        (tmp_path / name / META_FILE).write_text("{}")
    notes: list[str] = []
    age = await backup_age(FileStore(tmp_path, "file:///store"), notes.append)
    assert age is not None and 3 * M <= age < 4 * M
    assert len(notes) == 1 and future in notes[0] and "named in the future" in notes[0]


# -- properties ----------------------------------------------------------------------------------------

backup_times = st.lists(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(
        lambda t: t.replace(tzinfo=UTC, microsecond=0)
    ),
    max_size=120,
)
clocks = st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2034, 1, 1)).map(
    lambda t: t.replace(tzinfo=UTC)
)
retentions = st.sampled_from(
    [(DEFAULT_HOURLY, DEFAULT_DAILY), (timedelta(0), timedelta(0)), (2 * H, 3 * D), (30 * D, 30 * D)]
)


@settings(max_examples=300, deadline=None)
@given(times=backup_times, now=clocks, retention=retentions)
def test_retention_is_safe_whatever_the_clock(
    times: list[datetime], now: datetime, retention: tuple[timedelta, timedelta]
) -> None:
    names = sorted({format_name(t, 1) for t in times})
    hourly, daily = retention
    deleted = backups_to_delete(names, now, hourly, daily)
    kept = [n for n in names if n not in deleted]

    assert set(deleted) <= set(expired(names, now, hourly, daily)), "only what the original's rules expire"
    assert not set(deleted) & set(names[-KEEP_NEWEST:]), "never one of the 10 newest"
    assert len(deleted) <= len(names) * MAX_SHARE, "never more than half in one pass"
    for unit, count in ((H, hourly // H + 1), (D, daily // D + 1)):
        recent = _buckets(names, unit)[-count:]
        assert set(recent) <= set(_buckets(kept, unit)), f"one backup per recent {unit} holding one"


def _buckets(names: list[str], unit: timedelta) -> list[datetime]:
    """The distinct hours or days (oldest first) that hold a backup."""
    out: list[datetime] = []
    for n in names:
        parsed = parse_name(n)
        assert parsed is not None
        when = parsed[0]
        key = when.replace(minute=0, second=0) if unit == H else when.replace(hour=0, minute=0, second=0)
        if not out or out[-1] != key:
            out.append(key)
    return out
