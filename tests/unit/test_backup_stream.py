"""A backup is read once while it streams: fetched (checksum and gzip's CRCs checked as the
snapshot is written) on the nodes that restore it, checked without being written on the leader."""

from __future__ import annotations

import errno
import gzip
import io
import os
from pathlib import Path

import pytest

from etcdmgr.backup import BackupError, check_backup, fetch_backup
from etcdmgr.backup import restore as restore_module
from etcdmgr.backup.errors import NotEnoughSpace
from etcdmgr.model.backup import BackupInfo
from etcdmgr.store import FileStore
from etcdmgr.store.layout import CHECKSUMS_FILE, DATA_FILE
from etcdmgr.util.gz import CHUNK, compress_stream

NAME = "2024-06-15T12:00:00Z-000001"
SNAPSHOT = os.urandom(CHUNK) + b"bbolt page " * 500_000  # several gzip members


async def a_backup(tmp_path: Path, *, checksums: bool = True, damage: bool = False) -> FileStore:
    store = FileStore(tmp_path / "store", "file:///store")
    packed = io.BytesIO()
    compress_stream(io.BytesIO(SNAPSHOT), packed)
    (tmp_path / "data.gz").write_bytes(packed.getvalue())
    await store.write_backup(NAME, {DATA_FILE: tmp_path / "data.gz"}, BackupInfo("3.5.30", 1718452800))
    if not checksums:
        (store.root / NAME / CHECKSUMS_FILE).unlink()
    if damage:
        data = bytearray((store.root / NAME / DATA_FILE).read_bytes())
        data[len(data) // 3] ^= 0xFF
        (store.root / NAME / DATA_FILE).write_bytes(bytes(data))
    return store


async def test_a_node_fetches_the_snapshot_in_one_pass_leaving_no_packed_copy(tmp_path: Path) -> None:
    store = await a_backup(tmp_path)
    fetched = await fetch_backup(store, NAME, tmp_path / "out")
    assert fetched.snapshot.read_bytes() == SNAPSHOT
    assert os.listdir(tmp_path / "out") == ["snapshot.db"]


@pytest.mark.parametrize("checksums", [True, False], ids=["ours", "the original's"])
async def test_a_damaged_backup_is_refused_and_no_snapshot_is_left(tmp_path: Path, checksums: bool) -> None:
    store = await a_backup(tmp_path, checksums=checksums, damage=True)
    # The damaged member's CRC stops the fetch there, before the checksum is known.
    with pytest.raises(BackupError, match=f"backup {NAME} cannot be used: cannot gunzip"):
        await fetch_backup(store, NAME, tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []
    # The leader reads ours only for their checksum.
    cause = "checksum mismatch" if checksums else "cannot gunzip"
    with pytest.raises(BackupError, match=f"backup {NAME} cannot be used: .*{cause}"):
        await check_backup(store, NAME, tmp_path / "check")


@pytest.mark.parametrize("checksums", [True, False], ids=["ours", "the original's"])
async def test_the_leader_checks_a_good_backup_without_writing_it(tmp_path: Path, checksums: bool) -> None:
    store = await a_backup(tmp_path, checksums=checksums)
    checked = await check_backup(store, NAME, tmp_path / "check")
    assert checked.info.etcd_version == "3.5.30"
    assert os.listdir(tmp_path / "check") == []


async def test_a_backup_the_original_wrote_in_one_member_is_fetched(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store", "file:///store")
    (tmp_path / "data.gz").write_bytes(gzip.compress(SNAPSHOT))
    await store.write_backup(NAME, {DATA_FILE: tmp_path / "data.gz"}, BackupInfo("3.4.13", 1))
    (store.root / NAME / CHECKSUMS_FILE).unlink()
    fetched = await fetch_backup(store, NAME, tmp_path / "out")
    assert fetched.snapshot.read_bytes() == SNAPSHOT


async def test_room_for_the_packed_backup_is_checked_before_unpacking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await a_backup(tmp_path)
    asked: list[int] = []

    def no_room(path: Path, size: int, what: str) -> str:
        asked.append(size)
        return f"no room for {what}"

    monkeypatch.setattr(restore_module, "space_problem", no_room)
    with pytest.raises(NotEnoughSpace, match=f"no room for unpacking backup {NAME}"):
        await fetch_backup(store, NAME, tmp_path / "out")
    assert asked == [(store.root / NAME / DATA_FILE).stat().st_size]


class FullDisk(io.RawIOBase):
    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_disk_that_fills_while_unpacking_says_so(tmp_path: Path) -> None:
    write = restore_module._writer(FullDisk(), tmp_path / "snapshot.db", NAME)  # type: ignore[arg-type]
    with pytest.raises(NotEnoughSpace, match=f"not enough free space under {tmp_path}"):
        write(b"x")


async def test_a_backup_declaring_its_size_is_refused_before_anything_is_unpacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path / "store", "file:///store")
    packed = io.BytesIO()
    compress_stream(io.BytesIO(SNAPSHOT), packed, size=len(SNAPSHOT))
    (tmp_path / "data.gz").write_bytes(packed.getvalue())
    await store.write_backup(NAME, {DATA_FILE: tmp_path / "data.gz"}, BackupInfo("3.5.30", 1))
    asked: list[int] = []

    def room_for_the_packed_file_only(path: Path, size: int, what: str) -> str | None:
        asked.append(size)
        return None if size < len(SNAPSHOT) else f"no room for {what}"

    monkeypatch.setattr(restore_module, "space_problem", room_for_the_packed_file_only)
    with pytest.raises(NotEnoughSpace, match=f"no room for unpacking backup {NAME}"):
        await fetch_backup(store, NAME, tmp_path / "out")
    assert asked[-1] == len(SNAPSHOT)
    assert os.listdir(tmp_path / "out") == []
