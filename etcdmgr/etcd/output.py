"""etcd's output: read from a pipe by the daemon and written to etcd.log, capped in size.

etcd holds its output open for its whole life, so a file it wrote itself could only be rotated by
copying and truncating it, losing what etcd writes in between. Instead etcd writes into a pipe
and a thread of the daemon appends what it reads to etcd.log, which it rotates at MAX_BYTES into
etcd.log.1, etcd.log.2 (KEEP files in all). The thread is not the event loop's, so a busy loop
never holds etcd up; the pipe holds 1 MiB where the system allows, so even a stopped daemon
(SIGSTOP) leaves etcd minutes of logging before its writes would wait.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import BinaryIO

MAX_BYTES = 10 << 20
KEEP = 3  # etcd.log and two rotated files
PIPE_SIZE = 1 << 20
_CHUNK = 1 << 16


class RotatingLog:
    """An append-only log file of at most `max_bytes` (a single larger write excepted), rotated
    into `<name>.1` .. `<name>.<keep-1>`. Blocking; one writer at a time. A write that fails
    (OSError) is tried afresh with the next one: the file is opened again."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> None:
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self._file: BinaryIO | None = None
        self._size = 0

    def write(self, data: bytes) -> None:
        if self._file is None:
            self._open()
        if self._size and self._size + len(data) > self.max_bytes:
            self.close()
            self._shift()
            self._open()
        assert self._file is not None
        try:
            self._file.write(data)
            self._file.flush()
        except OSError:
            self.close()
            raise
        self._size += len(data)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")
        self._size = self._file.tell()

    def _shift(self) -> None:
        """etcd.log.1 becomes .2 and so on; the oldest goes; etcd.log becomes etcd.log.1."""
        for n in range(self.keep - 1, 0, -1):
            newer = self.path if n == 1 else self._numbered(n - 1)
            if newer.exists():
                newer.replace(self._numbered(n))
        self.path.unlink(missing_ok=True)  # with keep=1 nothing was moved

    def _numbered(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):  # what a failed flush held is lost
                file.close()


def output_pipe() -> tuple[int, int]:
    """(read end, write end), close-on-exec, with the largest buffer up to PIPE_SIZE allowed."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size for an unprivileged user: the default 64 KiB
    return read_fd, write_fd


def copy_output(read_fd: int, log: RotatingLog) -> None:
    """Append everything read from `read_fd` to `log` until the writer closes it, then close
    both. Blocking: runs in a thread of its own for the life of one etcd. What cannot be written
    (a full disk) is dropped: the pipe is drained whatever happens, so etcd never waits on it."""
    try:
        while chunk := os.read(read_fd, _CHUNK):
            try:
                log.write(chunk)
            except OSError:
                continue
    finally:
        os.close(read_fd)
        log.close()
