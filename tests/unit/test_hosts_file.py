"""The managed block of member names in a hosts file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from etcdmgr.node.hosts_file import (
    member_host_name,
    render_block,
    update_hosts_file,
    update_hosts_text,
)

CLUSTER = "main"
BEGIN = "# Begin host entries managed by etcd-manager[main] - do not edit\n"
END = "# End host entries managed by etcd-manager[main]\n"
ENTRIES = {"b.internal": ["10.0.0.2"], "a.internal": ["10.0.0.1"]}
BLOCK = BEGIN + "10.0.0.1\ta.internal\n10.0.0.2\tb.internal\n" + END
FOREIGN = "127.0.0.1\tlocalhost\n\n# a comment someone wrote\n::1 localhost ip6-localhost\n"


def update(text: str, entries: dict[str, list[str]] = ENTRIES) -> str:
    return update_hosts_text(text, entries, cluster_name=CLUSTER)


def test_render_block_is_sorted_deduplicated_and_canonical() -> None:
    entries = {"b": ["10.0.0.2", "10.0.0.2"], "a": ["2001:DB8:0::1", "10.0.0.9"]}
    assert render_block(entries, cluster_name=CLUSTER) == (
        BEGIN + "10.0.0.2\tb\n10.0.0.9\ta\n2001:db8::1\ta\n" + END
    )


def test_render_block_same_for_any_input_order() -> None:
    reordered = {"a.internal": ["10.0.0.1"], "b.internal": ["10.0.0.2"]}
    assert render_block(reordered, cluster_name=CLUSTER) == render_block(ENTRIES, cluster_name=CLUSTER)


@pytest.mark.parametrize(
    "entries",
    [{"bad name": ["10.0.0.1"]}, {"x\n10.6.6.6": ["10.0.0.1"]}, {"": ["10.0.0.1"]}, {"a": ["not-an-ip"]}],
)
def test_render_block_refuses_what_would_break_the_file(entries: dict[str, list[str]]) -> None:
    with pytest.raises(ValueError):
        render_block(entries, cluster_name=CLUSTER)


@pytest.mark.parametrize(
    ("current", "entries", "expected"),
    [
        pytest.param("", ENTRIES, BLOCK, id="append-to-empty"),
        pytest.param(FOREIGN, ENTRIES, FOREIGN + BLOCK, id="append"),
        pytest.param("127.0.0.1 localhost", ENTRIES, "127.0.0.1 localhost\n" + BLOCK, id="append-no-newline"),
        pytest.param(
            "a\n" + BEGIN + "10.9.9.9\told\n" + END + "\n# after\nb\n",
            ENTRIES,
            "a\n" + BLOCK + "\n# after\nb\n",
            id="replace-in-place",
        ),
        pytest.param(FOREIGN + BLOCK + "# tail\n", {}, FOREIGN + "# tail\n", id="remove"),
        pytest.param(FOREIGN, {}, FOREIGN, id="remove-when-absent"),
        pytest.param(
            "a\r\n" + BEGIN + END + "b\r\n", ENTRIES, "a\r\n" + BLOCK + "b\r\n", id="crlf-foreign-lines-kept"
        ),
        pytest.param(
            "a\n" + BEGIN + "10.9.9.9\told\n", ENTRIES, "a\n" + BLOCK, id="unterminated-block-runs-to-end"
        ),
        pytest.param("a\n" + END + "b\n", ENTRIES, "a\nb\n" + BLOCK, id="stray-end-dropped"),
        pytest.param(
            BEGIN + END + "a\n" + BEGIN + END, ENTRIES, BLOCK + "a\n", id="duplicate-blocks-merged-into-first"
        ),
        pytest.param(
            "a\n  " + BEGIN + END.rstrip("\n") + "  \nb\n",
            ENTRIES,
            "a\n" + BLOCK + "b\n",
            id="markers-with-spaces",
        ),
    ],
)
def test_update_hosts_text(current: str, entries: dict[str, list[str]], expected: str) -> None:
    assert update(current, entries) == expected
    # Idempotent: a second pass changes nothing.
    assert update(expected, entries) == expected


def test_other_clusters_block_is_left_alone() -> None:
    events = update_hosts_text(FOREIGN, {"e.internal": ["10.0.0.5"]}, cluster_name="events")
    both = update(events)
    assert both == events + BLOCK
    assert update(both, {}) == events


def test_append_then_remove_restores_the_text() -> None:
    assert update(update(FOREIGN), {}) == FOREIGN


def test_block_written_by_the_original_is_kept_as_is() -> None:
    # The original puts a blank line before its block at the end of the file.
    original = "127.0.0.1\tlocalhost\n\n" + BLOCK
    assert update(original) == original


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [("", "m1"), (".internal.example", "m1.internal.example"), ("internal.example", "m1.internal.example")],
)
def test_member_host_name(suffix: str, expected: str) -> None:
    assert member_host_name("m1", suffix) == expected


async def test_file_created_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    assert await update_hosts_file(path, ENTRIES, cluster_name=CLUSTER)
    assert path.read_text() == BLOCK


async def test_file_updated_keeps_mode_and_foreign_lines(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text(FOREIGN)
    path.chmod(0o640)
    assert await update_hosts_file(path, ENTRIES, cluster_name=CLUSTER)
    assert path.read_text() == FOREIGN + BLOCK
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert await update_hosts_file(path, {}, cluster_name=CLUSTER)
    assert path.read_text() == FOREIGN


async def test_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text(FOREIGN + BLOCK)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = path.stat()
    assert not await update_hosts_file(path, ENTRIES, cluster_name=CLUSTER)
    after = path.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)


async def test_non_utf8_bytes_in_foreign_lines_survive(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(b"10.1.1.1\tcaf\xe9\n")
    assert await update_hosts_file(path, ENTRIES, cluster_name=CLUSTER)
    assert path.read_bytes() == b"10.1.1.1\tcaf\xe9\n" + BLOCK.encode()


@pytest.mark.parametrize("code", [errno.EBUSY, errno.EXDEV])
async def test_bind_mounted_file_is_written_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    path = tmp_path / "hosts"
    path.write_text(FOREIGN + "x" * 500 + "\n")
    inode = path.stat().st_ino

    def refuse(src: str, dst: str) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", refuse)
    assert await update_hosts_file(path, ENTRIES, cluster_name=CLUSTER)
    assert path.read_text() == FOREIGN + "x" * 500 + "\n" + BLOCK
    # Shorter than before: the old tail must be cut off.
    assert await update_hosts_file(path, {}, cluster_name=CLUSTER)
    assert path.read_text() == FOREIGN + "x" * 500 + "\n"
    assert path.stat().st_ino == inode
    assert os.listdir(tmp_path) == ["hosts"]


async def test_other_write_errors_are_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hosts"
    path.write_text(FOREIGN)

    def refuse(src: str, dst: str) -> None:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        await update_hosts_file(path, ENTRIES, cluster_name=CLUSTER)
    assert path.read_text() == FOREIGN
