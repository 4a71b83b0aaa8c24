"""The node's disk: the trash is pruned (newest kept, then by count, age and size), removals and
renames that matter reach the disk (their folders are fsynced), and a job that needs scratch
room says how much is missing."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from etcdmgr.etcd.snapshot import _publish_dir
from etcdmgr.model import EtcdCluster, EtcdNode, EtcdState
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.state_file import write_state
from etcdmgr.node.trash import MAX_BYTES, TrashEntry, budget, prune_trash, to_prune
from etcdmgr.util import disk

DAY = 24 * 3600.0
NOW = 1_900_000_000.0
GIB = 1 << 30


def entry(name: str, days_ago: float, size: int = 1 << 20) -> TrashEntry:
    return TrashEntry(name, NOW - days_ago * DAY, size)


def test_the_trash_keeps_the_newest_three_younger_than_a_week_within_the_size_cap() -> None:
    five = [entry(f"t{i}", i) for i in range(5)]
    assert [e.name for e in to_prune(five, NOW)] == ["t4", "t3"], "beyond the newest three, oldest first"

    old = [entry("fresh", 1), entry("week-old", 8), entry("month-old", 30)]
    assert [e.name for e in to_prune(old, NOW)] == ["month-old", "week-old"]

    big = [entry("a", 0.1, 5 * GIB), entry("b", 0.2, 4 * GIB), entry("c", 0.3, 1 * GIB)]
    assert [e.name for e in to_prune(big, NOW)] == ["b"], f"together at most {MAX_BYTES >> 30} GiB"


def test_the_newest_entry_is_kept_whatever_its_age_or_size() -> None:
    """A clock that jumped forward, or one huge data dir, still leaves the last data held."""
    assert to_prune([entry("only", 400, 50 * GIB)], NOW) == []
    assert [e.name for e in to_prune([entry("new", 400), entry("old", 401)], NOW)] == ["old"]
    assert to_prune([], NOW) == []


def test_on_a_small_disk_the_trash_holds_at_most_a_quarter_of_it() -> None:
    """A 256 MiB data disk and data dirs of 70 MiB (a 64 MiB WAL each): three of them in the
    trash beside the live one filled the disk. The newest stays (the last data held)."""
    mib = 1 << 20
    three = [entry("new", 0.1, 70 * mib), entry("mid", 0.2, 70 * mib), entry("old", 0.3, 70 * mib)]
    assert [e.name for e in to_prune(three, NOW, budget(256 * mib))] == ["old", "mid"]
    small = [entry(f"s{i}", i * 0.1, 25 * mib) for i in range(3)]
    assert [e.name for e in to_prune(small, NOW, budget(256 * mib))] == ["s2"], "64 MiB of 256"
    assert budget(1 << 40) == MAX_BYTES, "a large disk keeps the fixed cap"


def trashed(layout: DataLayout, token: str, days_ago: float, size: int = 1000) -> Path:
    data = layout.etcd_data(token)  # type: ignore[arg-type]
    (data / "member").mkdir(parents=True)
    (data / "member" / "db").write_bytes(b"x" * size)
    moved = layout.move_to_trash(token)  # type: ignore[arg-type]
    assert moved is not None
    os.utime(moved, (NOW - days_ago * DAY, NOW - days_ago * DAY))
    return moved


def test_pruning_deletes_from_the_trash_and_says_what(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    layout = DataLayout(tmp_path)
    assert prune_trash(layout, NOW) == [], "no trash folder: nothing to do, and none made"
    assert not layout.trashcan().exists()

    moved = [trashed(layout, f"tok{i}", days) for i, days in enumerate((9, 5, 3, 2, 1))]
    pruned = prune_trash(layout, NOW)

    assert pruned == [moved[0].name, moved[1].name]
    assert sorted(p.name for p in layout.trashcan().iterdir()) == sorted(p.name for p in moved[2:])
    assert f"pruned 2 old etcd data dirs from {layout.trashcan()}" in caplog.text
    assert moved[0].name in caplog.text and "3 kept" in caplog.text


def test_a_token_trashed_twice_in_one_second_keeps_both(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    first, second = trashed(layout, "tok", 0), trashed(layout, "tok", 0)
    assert first != second and first.is_dir() and second.is_dir()


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """The folders fsynced from now on (files fsynced show as their own paths)."""
    seen: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return lambda: seen


def test_removals_and_renames_that_matter_sync_their_folders(
    tmp_path: Path, fsynced: Callable[[], list[str]]
) -> None:
    layout = DataLayout(tmp_path / "node")
    state = EtcdState(EtcdCluster("tok", (EtcdNode("m1"),)), "3.5.30")
    write_state(layout.state, state)
    before = len(fsynced())
    write_state(layout.state, None)
    assert fsynced()[before:] == [str(layout.root)], "the state file's removal"

    layout.etcd_data("tok").mkdir(parents=True)  # type: ignore[arg-type]
    before = len(fsynced())
    moved = layout.move_to_trash("tok")  # type: ignore[arg-type]
    assert moved is not None
    assert {str(layout.data()), str(layout.trashcan())} <= set(fsynced()[before:]), "both sides of the move"

    partial = tmp_path / "restored.restoring"
    partial.mkdir()
    before = len(fsynced())
    _publish_dir(partial, tmp_path / "restored")
    assert fsynced()[before:] == [str(tmp_path)], "a restored data dir put in place"


def test_a_job_needing_more_room_than_is_free_says_how_much_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Fs:
        f_frsize = 4096
        f_blocks = 10 * GIB // 4096  # a 10 GiB filesystem: the full 64 MiB reserve
        f_bavail = 1 * GIB // 4096

    monkeypatch.setattr(os, "statvfs", lambda path: Fs)
    assert disk.space_problem(tmp_path / "not-made-yet", 900 << 20, "a backup") is None
    problem = disk.space_problem(tmp_path, 1 * GIB, "a backup")
    assert problem == (
        f"not enough free space for a backup under {tmp_path}: it needs 1024.0 MiB and 64.0 MiB stay "
        "free for etcd, but only 1024.0 MiB are free: 64.0 MiB missing"
    )
    Fs.f_blocks = 100 << 20 >> 12  # 100 MiB: a tenth is kept
    Fs.f_bavail = 50 << 20 >> 12
    assert "10.0 MiB stay free" in (disk.space_problem(tmp_path, 45 << 20, "x") or "")
    assert disk.space_problem(tmp_path, 40 << 20, "x") is None


def test_the_newest_goes_too_when_the_disk_has_no_room_for_a_data_dir_of_its_size() -> None:
    """Found by the soak: a restore moved a 138 MiB data dir into the trash of a 256 MiB disk and
    the restored member's etcd failed with 'no space left on device'. The newest is the data this
    node held last, but the data it runs now comes first."""
    mib = 1 << 20
    newest, older = entry("newest", 0.1, 138 * mib), entry("older", 0.2, 20 * mib)
    assert [e.name for e in to_prune([newest, older], NOW, budget(256 * mib), free=100 * mib)] == [
        "older",
        "newest",
    ]
    # Pruning the older entries makes room enough: the newest stays.
    assert [e.name for e in to_prune([newest, older], NOW, budget(256 * mib), free=120 * mib)] == ["older"]
    assert to_prune([newest], NOW, budget(256 * mib), free=140 * mib) == []
