"""The wall clock's test hook: an offset file moves one daemon's clock, nothing else does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from etcdmgr.util import clock


def close_to(when: datetime, expected: datetime) -> bool:
    return abs(when - expected) < timedelta(seconds=5)


def test_without_the_variable_the_clock_is_the_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clock.OFFSET_FILE_ENV, raising=False)
    assert close_to(clock.now(), datetime.now(UTC))
    assert clock.now().tzinfo is not None


def test_the_offset_file_jumps_the_clock_forward_and_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offset = tmp_path / "offset"
    monkeypatch.setenv(clock.OFFSET_FILE_ENV, str(offset))
    offset.write_text("86400\n")
    assert close_to(clock.now(), datetime.now(UTC) + timedelta(days=1))
    offset.write_text("-3600.5")
    assert close_to(clock.now(), datetime.now(UTC) - timedelta(hours=1))


@pytest.mark.parametrize("content", [None, "", "soon", "nan", "inf", "1e300"])
def test_a_missing_or_unusable_offset_is_no_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None
) -> None:
    offset = tmp_path / "offset"
    if content is not None:
        offset.write_text(content)
    monkeypatch.setenv(clock.OFFSET_FILE_ENV, str(offset))
    assert close_to(clock.now(), datetime.now(UTC))
