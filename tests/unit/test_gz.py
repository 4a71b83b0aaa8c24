"""Backups are gzipped in parallel members and unpacked while they stream (etcdmgr.util.gz)."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from etcdmgr.util import gz


def packed(data: bytes, **kwargs: int) -> bytes:
    out = io.BytesIO()
    gz.compress_stream(io.BytesIO(data), out, **kwargs)
    return out.getvalue()


def unpacked(blob: bytes, step: int = 65536) -> bytes:
    out = io.BytesIO()
    unpack = gz.Gunzip(out.write)
    for i in range(0, len(blob), step):
        unpack.write(blob[i : i + step])
    unpack.finish()
    return out.getvalue()


# Random bytes (stored), text (deflated) and zeros: several members of each kind.
DATA = os.urandom(gz.CHUNK + 1000) + b"etcd key value " * 700_000 + b"\0" * gz.CHUNK


def test_a_backup_of_several_members_is_one_gzip_file_for_gzip_and_python(tmp_path: Path) -> None:
    blob = packed(DATA, workers=2)
    assert blob.count(b"\x1f\x8b\x08") >= 4  # one member per chunk
    assert gzip.decompress(blob) == DATA
    (tmp_path / "etcd.backup.gz").write_bytes(blob)
    gunzip = shutil.which("gzip")
    assert gunzip is not None
    subprocess.run([gunzip, "-d", str(tmp_path / "etcd.backup.gz")], check=True)
    assert (tmp_path / "etcd.backup").read_bytes() == DATA


def test_compression_is_deterministic_whatever_the_number_of_workers() -> None:
    assert packed(DATA, workers=1) == packed(DATA, workers=3)


def test_random_data_is_stored_and_compressible_data_deflated() -> None:
    noise = os.urandom(gz.CHUNK)
    assert len(packed(noise)) < len(noise) + 1000  # stored: a few bytes of framing per block
    # Random values padded to 4 KiB pages: stored, wherever the sample falls.
    padded = b"".join(os.urandom(65_000) + bytes(4_632) for _ in range(4 * gz.CHUNK // 65_536))
    assert len(packed(padded)) < 1.001 * len(padded)
    chunks = [padded[i : i + gz.CHUNK] for i in range(0, len(padded) - gz.CHUNK, 69_632 // 7)]
    assert all(len(gz.gzip_member(c)) > len(c) for c in chunks)  # each stored (run-length: smaller)
    # Random values among many zeroed pages: the zeros go.
    pages = b"".join(os.urandom(52_000) + bytes(13_536) for _ in range(4 * gz.CHUNK // 65_536))
    assert len(packed(pages)) < 0.82 * len(pages)
    text = b"/registry/pods/default/web-" * 200_000
    assert len(packed(text)) < len(text) // 50


def test_an_empty_file_packs_to_a_valid_gzip_file() -> None:
    blob = packed(b"")
    assert gzip.decompress(blob) == b""
    assert unpacked(blob) == b""


def test_what_gzip_and_python_write_unpacks_too() -> None:
    text = b"abc" * 100_000
    assert unpacked(gzip.compress(text)) == text
    assert unpacked(gzip.compress(text) + gzip.compress(b"tail")) == text + b"tail"


@pytest.mark.parametrize("step", [1, 7, 65536, 1 << 22])
def test_chunk_boundaries_do_not_matter(step: int) -> None:
    small = os.urandom(3000) + b"x" * 300_000
    blob = gzip.compress(small) + gzip.compress(small)
    assert unpacked(blob, step) == small + small


def test_a_corrupt_member_is_refused_while_streaming_before_the_end() -> None:
    blob = bytearray(packed(os.urandom(4 * gz.CHUNK)))  # four stored members
    blob[len(blob) // 8] ^= 0xFF  # inside the first: its CRC no longer matches
    seen = io.BytesIO()
    unpack = gz.Gunzip(seen.write)
    fed = 0
    with pytest.raises(gz.CorruptGzip):
        for i in range(0, len(blob), 65536):
            unpack.write(bytes(blob[i : i + 65536]))
            fed = i
    assert fed < len(blob) // 2  # refused at the end of the bad member, not at the end of the file


def test_a_truncated_file_or_trailing_garbage_is_refused() -> None:
    blob = packed(b"hello" * 1000)
    with pytest.raises(gz.CorruptGzip, match="truncated"):
        unpacked(blob[:-3])
    with pytest.raises(gz.CorruptGzip, match="truncated"):
        unpacked(b"")
    with pytest.raises(gz.CorruptGzip):
        unpacked(blob + b"garbage!")
    with pytest.raises(gz.CorruptGzip):
        unpacked(b"not gzip at all")


def test_checking_only_keeps_nothing() -> None:
    check = gz.Gunzip()
    check.write(packed(DATA))
    check.finish()
    assert check.unpacked == len(DATA)


def test_compressing_threads_run_at_a_lower_priority_than_the_daemon() -> None:
    seen: list[int] = []

    def compress_and_look(data: bytes, level: int) -> bytes:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return real(data, level)

    real = gz.gzip_member
    gz.gzip_member = compress_and_look  # type: ignore[assignment]
    try:
        packed(b"x" * (3 * gz.CHUNK), workers=2)
    finally:
        gz.gzip_member = real  # type: ignore[assignment]
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen and set(seen) == {max(own, gz.NICENESS)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the caller keeps its own


def test_a_file_can_declare_its_unpacked_size_up_front_and_every_reader_skips_it(tmp_path: Path) -> None:
    blob = packed(DATA, size=len(DATA))
    assert gz.declared_size(blob[:64]) == len(DATA)
    assert gzip.decompress(blob) == DATA and unpacked(blob) == DATA
    (tmp_path / "etcd.backup.gz").write_bytes(blob)
    subprocess.run(["gzip", "-t", str(tmp_path / "etcd.backup.gz")], check=True)
    assert gz.declared_size(packed(DATA)) is None  # no declaration: as the original writes
    assert gz.declared_size(gzip.compress(DATA)) is None
