"""etcd's output goes through a pipe to etcd.log, which is capped in size and rotated; a log
that cannot be written never holds etcd's writes up."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from etcdmgr.etcd.output import RotatingLog, copy_output, output_pipe

LINE = b"x" * 99 + b"\n"


def sizes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())}


def test_the_log_is_rotated_at_its_cap_keeping_three_files(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "etcd.log", max_bytes=1000, keep=3)
    for n in range(35):
        log.write(LINE.replace(b"x", str(n % 10).encode(), 1))
    log.close()
    assert sizes(tmp_path) == {"etcd.log": 500, "etcd.log.1": 1000, "etcd.log.2": 1000}
    # The newest lines are in etcd.log, the ones before in .1, then .2; the oldest are gone.
    assert (tmp_path / "etcd.log").read_bytes().startswith(b"0")
    assert (tmp_path / "etcd.log.1").read_bytes().startswith(b"0") and b"\n9" in (
        tmp_path / "etcd.log.1"
    ).read_bytes()


def test_an_old_log_over_the_cap_is_rotated_at_the_first_write(tmp_path: Path) -> None:
    (tmp_path / "etcd.log").write_bytes(b"old\n" * 1000)  # e.g. written by an earlier release
    log = RotatingLog(tmp_path / "etcd.log", max_bytes=1000)
    log.write(b"new\n")
    log.close()
    assert sizes(tmp_path) == {"etcd.log": 4, "etcd.log.1": 4000}


def test_the_pipe_is_drained_whatever_the_log_does(tmp_path: Path) -> None:
    """8 MiB written while the log's folder is in the way of a file: the writer (etcd) finishes,
    the lines are dropped, and the copy ends when the writer closes its end."""
    (tmp_path / "blocked").write_text("a file where the log folder should be")
    read_fd, write_fd = output_pipe()
    copier = threading.Thread(
        target=copy_output, args=(read_fd, RotatingLog(tmp_path / "blocked" / "etcd.log"))
    )
    copier.start()
    for _ in range(128):
        os.write(write_fd, b"y" * (1 << 16))
    os.close(write_fd)
    copier.join(timeout=10)
    assert not copier.is_alive()


def test_everything_written_reaches_the_log_in_order(tmp_path: Path) -> None:
    read_fd, write_fd = output_pipe()
    copier = threading.Thread(target=copy_output, args=(read_fd, RotatingLog(tmp_path / "etcd.log")))
    copier.start()
    sent = b"".join(f"line {n}\n".encode() for n in range(20000))
    os.write(write_fd, sent[:50000])
    os.write(write_fd, sent[50000:])
    os.close(write_fd)
    copier.join(timeout=10)
    assert (tmp_path / "etcd.log").read_bytes() == sent
