"""fetch_backup refuses broken backups with a BackupError naming the backup and the cause;
the v2 key file round-trips. No etcd needed: a snapshot is opaque bytes here."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from etcdmgr.backup import BackupError, fetch_backup
from etcdmgr.backup.v2file import V2_FILE, read_v2_file, write_v2_file
from etcdmgr.etcd.http import V2Node
from etcdmgr.model.backup import BackupInfo
from etcdmgr.store import FileStore
from etcdmgr.store.layout import CHECKSUMS_FILE, DATA_FILE, META_FILE

NAME = "2024-06-15T12:00:00Z-000001"
SNAPSHOT = b"pretend snapshot db \x00\xff" * 100
NODES = [V2Node("/a", "1", None), V2Node("/d", None, None), V2Node("/t", "x\n\u00e9", 30)]


async def make_backup(tmp_path: Path, *, with_v2: bool = False) -> FileStore:
    store = FileStore(tmp_path / "store", "file:///store")
    files = {DATA_FILE: tmp_path / "data.gz"}
    files[DATA_FILE].write_bytes(gzip.compress(SNAPSHOT))
    if with_v2:
        files[V2_FILE] = tmp_path / "v2.gz"
        write_v2_file(NODES, files[V2_FILE])
    await store.write_backup(NAME, files, BackupInfo("3.5.30", 1718452800))
    return store


async def test_fetch_good_backup(tmp_path: Path) -> None:
    store = await make_backup(tmp_path, with_v2=True)
    fetched = await fetch_backup(store, NAME, tmp_path / "out")
    assert fetched.snapshot.read_bytes() == SNAPSHOT
    assert fetched.v2 == tuple(NODES)
    assert fetched.info.etcd_version == "3.5.30"
    assert not (tmp_path / "out" / DATA_FILE).exists()  # the packed copy is not kept


def test_v2_file_round_trip_and_format(tmp_path: Path) -> None:
    path = tmp_path / V2_FILE
    write_v2_file(NODES, path)
    assert read_v2_file(path) == NODES
    assert gzip.decompress(path.read_bytes()).startswith(b'{"format":"etcdmgr-v2-keys","version":1,')


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda f: (f / META_FILE).unlink(), "no backup named", id="missing meta"),
        pytest.param(lambda f: (f / META_FILE).write_text("{not json"), "not valid JSON", id="bad meta"),
        pytest.param(lambda f: (f / DATA_FILE).unlink(), "has no file etcd.backup.gz", id="missing data"),
        pytest.param(
            lambda f: (f / DATA_FILE).write_bytes(gzip.compress(b"other")), "checksum mismatch", id="checksum"
        ),
        pytest.param(
            lambda f: (f / V2_FILE).write_bytes(b"\x1f\x8b junk"), "checksum mismatch", id="v2 checksum"
        ),
    ],
)
async def test_broken_backup_refused(tmp_path: Path, damage: Callable[[Path], object], message: str) -> None:
    store = await make_backup(tmp_path, with_v2=True)
    damage(store.root / NAME)
    with pytest.raises(BackupError, match=f"backup {NAME} cannot be used: .*{message}"):
        await fetch_backup(store, NAME, tmp_path / "out")


async def test_bad_gzip_refused(tmp_path: Path) -> None:
    """Without checksums (a backup the original wrote), gzip's CRC still catches damage."""
    store = await make_backup(tmp_path)
    data = store.root / NAME / DATA_FILE
    packed = bytearray(data.read_bytes())
    packed[len(packed) // 2] ^= 0xFF
    data.write_bytes(bytes(packed))
    (store.root / NAME / CHECKSUMS_FILE).unlink()
    with pytest.raises(BackupError, match=f"backup {NAME} cannot be used: cannot gunzip"):
        await fetch_backup(store, NAME, tmp_path / "out")
    data.write_bytes(b"not gzip at all")
    with pytest.raises(BackupError, match="cannot gunzip"):
        await fetch_backup(store, NAME, tmp_path / "out")


async def test_unknown_backup(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store", "file:///store")
    with pytest.raises(BackupError, match="no backup named 2020"):
        await fetch_backup(store, "2020-01-01T00:00:00Z-000001", tmp_path / "out")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (gzip.compress(b'{"format": "other"}', mtime=0), "not a v2 key file"),
        (gzip.compress(b'{"format": "etcdmgr-v2-keys", "version": 9, "nodes": []}', mtime=0), "version 9"),
        (gzip.compress(b'{"format": "etcdmgr-v2-keys", "version": 1, "nodes": [{}]}', mtime=0), "malformed"),
        (b"plain", "not a gzipped JSON"),
    ],
    ids=["not v2", "version 9", "malformed", "plain"],
)
def test_bad_v2_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / V2_FILE
    path.write_bytes(content)
    with pytest.raises(BackupError, match=message):
        read_v2_file(path)
