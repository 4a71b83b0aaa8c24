"""Streaming gzip helpers for snapshot files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.snapshot import gunzip_file, gzip_file


async def test_round_trip_is_deterministic(tmp_path: Path) -> None:
    data = os.urandom(3 << 20) + b"\0" * (2 << 20)  # several chunks
    (tmp_path / "a").write_bytes(data)
    await gzip_file(tmp_path / "a", tmp_path / "a.gz")
    await gzip_file(tmp_path / "a", tmp_path / "b.gz")
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    await gunzip_file(tmp_path / "a.gz", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["a", "a.gz", "b.gz", "out"]  # no temp files left


async def test_truncated_input_leaves_no_output(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(os.urandom(100_000))
    await gzip_file(tmp_path / "a", tmp_path / "a.gz")
    whole = (tmp_path / "a.gz").read_bytes()
    (tmp_path / "a.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(EtcdError, match="cannot gunzip"):
        await gunzip_file(tmp_path / "a.gz", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out.tmp").exists()
