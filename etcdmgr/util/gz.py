"""Gzip for backups: written in parallel as concatenated members, read back while streaming.

A `.gz` of several gzip members is one valid file: `gzip -d`, Python's gzip module and Go's
compress/gzip (multistream by default; the original reads backups with it) read it as the
concatenation of its members. So chunks are compressed independently on a few low-priority
worker threads (at most cores - 1: the etcd member beside us keeps a core) and written in order.
A chunk that does not compress (random values) is stored, or run-length coded when it is
largely runs of zeros: deflating it costs ten times more CPU than storing and saves little more. Both ends stream, so memory stays flat whatever the size.
All blocking; callers run them in a worker thread.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

CHUNK = 1 << 20  # input bytes per gzip member (two or three in memory at once)
SAMPLE = 16 << 10  # bytes of a chunk test-compressed to tell whether it compresses
INCOMPRESSIBLE = 0.95  # a sample that shrinks less than this is stored, not deflated
# ... unless this share of its chunk is runs of zeros: then run-length coded, at a tenth of the
# speed of storing (large values padded to pages hold about 6%: stored, they cost 3% in size).
PADDED = 0.10
_ZEROS = bytes(256)
LEVEL = 6  # Go's default level, which the original writes
NICENESS = 10  # of the compressing threads: etcd's own work comes first
_WBITS = 31  # deflate with a gzip header and trailer (mtime 0, no name: same bytes each time)
_OUT = 1 << 20  # bytes a decompression step may produce at most
_SIZE_ID = b"EM"  # the extra subfield of size_member
_SIZE_STRUCT = struct.Struct("<Q")


class CorruptGzip(ValueError):
    """The bytes are not a complete gzip file: damaged, truncated or not gzip at all."""


def compress_workers() -> int:
    """Worker threads for compressing: all cores but one, at least one."""
    return max(1, (os.cpu_count() or 1) - 1)


def gzip_member(data: bytes, level: int = LEVEL) -> bytes:
    """One complete gzip member holding ``data``. When a sample of it does not compress, it is
    stored (level 0), or run-length coded if it holds many runs of zeros (free or padded pages):
    run-length coding takes them out at a third of deflate's cost."""
    strategy = zlib.Z_DEFAULT_STRATEGY
    if level > 0 and len(data) >= 2 * SAMPLE:
        mid = len(data) // 2
        # Runs of zeros (page padding) in the sample say nothing of the rest: left out.
        sample = data[mid : mid + SAMPLE].replace(_ZEROS, b"")
        if len(sample) >= SAMPLE // 4 and len(zlib.compress(sample, 1)) > INCOMPRESSIBLE * len(sample):
            padded = data.count(_ZEROS) * len(_ZEROS) >= PADDED * len(data)
            level, strategy = (1, zlib.Z_RLE) if padded else (0, strategy)
    z = zlib.compressobj(level, zlib.DEFLATED, _WBITS, 8, strategy)
    return z.compress(data) + z.flush()


def _lower_priority(niceness: int) -> None:
    # Linux keeps a priority per thread; these threads are the pool's own, never reused later.
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < niceness:  # never raise a niced daemon's priority
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
    except OSError:
        pass  # not permitted, or not Linux: compress at normal priority


def size_member(size: int) -> bytes:
    """An empty gzip member whose header's extra field (RFC 1952 2.3.1.1, subfield "EM") says
    how many bytes the whole file unpacks to: a multi-member file's last trailer only gives its
    own member's size, and a reader wants the total before it writes anything. Every gzip
    reader skips the extra field."""
    field = _SIZE_ID + len(_SIZE_STRUCT.pack(0)).to_bytes(2, "little") + _SIZE_STRUCT.pack(size)
    header = b"\x1f\x8b\x08\x04" + bytes(4) + b"\x00\xff" + len(field).to_bytes(2, "little") + field
    return header + b"\x03\x00" + bytes(8)  # an empty deflate block; CRC 0, size 0


def declared_size(start: bytes) -> int | None:
    """The total size a file beginning with ``start`` declares in a size_member; None when it
    starts otherwise (as a file the original wrote)."""
    head = 12 + 4 + _SIZE_STRUCT.size
    if len(start) < head or start[:4] != b"\x1f\x8b\x08\x04" or start[12:14] != _SIZE_ID:
        return None
    return int(_SIZE_STRUCT.unpack_from(start, 16)[0])


def compress_stream(
    src: BinaryIO,
    dest: BinaryIO,
    *,
    size: int | None = None,
    level: int = LEVEL,
    workers: int = 0,
    niceness: int = NICENESS,
) -> None:
    """Write the gzip of everything ``src`` holds to ``dest``: first a size_member when ``size``
    (of ``src``) is given, then one member per CHUNK, compressed on ``workers`` threads (0:
    compress_workers()) at ``niceness``; at most workers + 1 chunks are in memory."""
    workers = workers or compress_workers()
    if size is not None:
        dest.write(size_member(size))
    wrote = False
    with ThreadPoolExecutor(
        workers, thread_name_prefix="gzip", initializer=_lower_priority, initargs=(niceness,)
    ) as pool:
        pending: deque[Future[bytes]] = deque()
        while chunk := src.read(CHUNK):
            pending.append(pool.submit(gzip_member, chunk, level))
            if len(pending) > workers:
                dest.write(pending.popleft().result())
                wrote = True
        while pending:
            dest.write(pending.popleft().result())
            wrote = True
    if not wrote:
        dest.write(gzip_member(b"", level))  # an empty file still gunzips


class Gunzip:
    """Unpacks a gzip file (of one member or several) fed chunk by chunk, checking each member's
    CRC and length as it ends; ``finish`` refuses a file that stops inside a member. Raises
    CorruptGzip at the first bad byte, so a damaged file is refused while it streams."""

    def __init__(self, out: Callable[[bytes], object] | None = None) -> None:
        """``out`` receives the unpacked bytes; None checks the file only."""
        self._out = out
        self._z = zlib.decompressobj(_WBITS)
        self._in_member = False
        self.members = 0
        self.unpacked = 0  # bytes unpacked so far

    def write(self, data: bytes) -> None:
        try:
            self._feed(data)
        except zlib.error as e:
            raise CorruptGzip(f"not valid gzip after {self.unpacked} unpacked bytes: {e}") from None

    def _feed(self, data: bytes) -> None:
        while True:
            if data:
                self._in_member = True
            piece = self._z.decompress(data, _OUT)
            self.unpacked += len(piece)
            if piece and self._out is not None:
                self._out(piece)
            if self._z.eof:  # the member's trailer is checked: the next member may follow
                self.members += 1
                data = self._z.unused_data
                self._z = zlib.decompressobj(_WBITS)
                self._in_member = False
                if not data:
                    return
                continue
            data = self._z.unconsumed_tail
            if not data and len(piece) < _OUT:
                return

    def finish(self) -> None:
        """Raise CorruptGzip unless everything fed ended with a complete member."""
        if self._in_member or self.members == 0:
            raise CorruptGzip(f"the gzip file is truncated (after {self.unpacked} unpacked bytes)")
