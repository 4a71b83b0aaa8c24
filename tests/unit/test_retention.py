"""Backup retention by the original's rules (pure, fixed clock) and the duration forms it is
configured with. The rules that do not trust the clock are in test_retention_safety.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from etcdmgr.model.durations import parse_duration, parse_human_duration
from etcdmgr.model.errors import InvalidData
from etcdmgr.store.retention import Retention, expired, retention_from_env

NOW = datetime(2024, 6, 15, 12, 30, 0, tzinfo=UTC)


def name(ago: timedelta, seq: int = 1) -> str:
    return f"{(NOW - ago).strftime('%Y-%m-%dT%H:%M:%S')}Z-{seq:06d}"


H = timedelta(hours=1)
D = timedelta(days=1)
M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("names", "deleted"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([name(5 * M), name(20 * M), name(59 * M)], [], id="all younger than an hour"),
        # 13:10 and 13:40 a day ago share an hour: the earliest stays.
        pytest.param(
            [name(D - 40 * M), name(D - 70 * M), name(10 * M)],
            [name(D - 70 * M)],
            id="hourly keeps the earliest of each hour",
        ),
        pytest.param(
            [name(2 * H, seq=2), name(2 * H, seq=1), name(1 * M)],
            [name(2 * H, seq=2)],
            id="same second: lowest sequence is the earliest",
        ),
        # 10 days ago, at 02:30 and 07:30 UTC on the same day, and 11 days ago.
        pytest.param(
            [name(10 * D + 10 * H), name(10 * D + 5 * H), name(11 * D), name(1 * M)],
            [name(10 * D + 5 * H)],
            id="daily keeps the earliest of each UTC day",
        ),
        pytest.param(
            [name(800 * D), name(731 * D), name(1 * M)],
            [name(800 * D), name(731 * D)],
            id="older than the daily retention is deleted",
        ),
        pytest.param(
            [name(900 * D), name(800 * D)],
            [name(900 * D)],
            id="the newest is kept however old",
        ),
        pytest.param(
            ["garbage", "2019-13-45T99:00:00Z-000001", name(900 * D), name(1 * M)],
            [name(900 * D)],
            id="unparseable names are never deleted",
        ),
    ],
)
def test_expired(names: list[str], deleted: list[str]) -> None:
    assert expired(names, NOW) == deleted


def test_custom_retentions() -> None:
    names = [name(3 * H), name(3 * H + 30 * M), name(2 * D), name(1 * M)]
    # Hourly for 2h only: 3h-old ones fall into the daily bucket (same day, earliest stays).
    assert expired(names, NOW, timedelta(hours=2), timedelta(days=1)) == [name(3 * H), name(2 * D)]


def test_hourly_and_daily_buckets_do_not_collide() -> None:
    # One backup just inside the hourly window, one just outside, in the same UTC hour.
    day = datetime(2024, 6, 8, 0, 0, tzinfo=UTC)
    inside = f"{(day + 50 * M).strftime('%Y-%m-%dT%H:%M:%S')}Z-000001"
    outside = f"{(day + 10 * M).strftime('%Y-%m-%dT%H:%M:%S')}Z-000001"
    now = day + 7 * D + 30 * M
    assert expired([outside, inside, name(1 * M)], now) == []


def test_retention_from_env() -> None:
    assert retention_from_env({}) == Retention(timedelta(days=7), timedelta(days=730))
    env = {
        "ETCD_MANAGER_HOURLY_BACKUPS_RETENTION": "48h",
        "ETCD_MANAGER_DAILY_BACKUPS_RETENTION": "1y",
    }
    assert retention_from_env(env) == Retention(timedelta(hours=48), timedelta(days=365))
    assert retention_from_env({"ETCD_MANAGER_DAILY_BACKUPS_RETENTION": ""}).daily == timedelta(days=730)
    with pytest.raises(InvalidData, match="ETCD_MANAGER_HOURLY_BACKUPS_RETENTION='a week'"):
        retention_from_env({"ETCD_MANAGER_HOURLY_BACKUPS_RETENTION": "a week"})
    with pytest.raises(InvalidData, match="negative"):
        retention_from_env({"ETCD_MANAGER_DAILY_BACKUPS_RETENTION": "-1d"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("168h", timedelta(days=7)),
        ("1.5s", timedelta(seconds=1.5)),
        (".5h", timedelta(minutes=30)),
        ("300ms", timedelta(milliseconds=300)),
        ("2us", timedelta(microseconds=2)),
        ("2\u00b5s", timedelta(microseconds=2)),
        ("-2m", timedelta(minutes=-2)),
        ("+1h", timedelta(hours=1)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "7d", "1h 30m", "-", ".s", "3000000h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InvalidData):
        parse_duration(text)


def test_parse_human_duration() -> None:
    assert parse_human_duration("7d") == timedelta(days=7)
    assert parse_human_duration("2y") == timedelta(days=730)
    assert parse_human_duration("90m") == timedelta(minutes=90)
    with pytest.raises(InvalidData):
        parse_human_duration("1.5d")  # the original takes whole days only


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(minutes=15), "15m0s"),
        (timedelta(hours=1, minutes=30), "1h30m0s"),
        (timedelta(days=7), "168h0m0s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=3), "3\u00b5s"),
        (timedelta(minutes=-2), "-2m0s"),
        (timedelta(hours=2, seconds=0.25), "2h0m0.25s"),
    ],
)
def test_parse_what_go_prints(td: timedelta, text: str) -> None:
    """The strings Go's Duration.String prints (as in the original's flags and logs) parse back."""
    assert parse_duration(text) == td
