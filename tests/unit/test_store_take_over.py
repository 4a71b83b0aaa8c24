"""file:// stores a backup's files by hard-linking them where it can (a 1 GB backup is not
written twice), copying them otherwise; either way the checksums are the files' own."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import pytest

from etcdmgr.model.backup import BackupInfo
from etcdmgr.store import FileStore
from etcdmgr.store import files as store_files
from etcdmgr.store.layout import DATA_FILE

NAME = "2024-06-15T12:00:00Z-000001"


def a_backup_file(tmp_path: Path) -> Path:
    src = tmp_path / "scratch" / DATA_FILE
    src.parent.mkdir()
    src.write_bytes(b"snapshot gzip " * 10_000)
    return src


async def test_a_backup_file_on_the_same_filesystem_is_linked_not_copied(tmp_path: Path) -> None:
    src = a_backup_file(tmp_path)
    store = FileStore(tmp_path / "store", "file:///store")
    info = await store.write_backup(NAME, {DATA_FILE: src}, BackupInfo("3.5.30", 1))
    stored = store.root / NAME / DATA_FILE
    assert src.samefile(stored)
    assert info.checksums[DATA_FILE] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert oct(stored.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in (store.root / NAME).iterdir() if p.name.startswith(".")] == []
    src.unlink()  # the caller's scratch goes; the backup stays
    assert stored.read_bytes() == b"snapshot gzip " * 10_000


async def test_where_links_fail_the_file_is_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = a_backup_file(tmp_path)

    def cross_device(a: object, b: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(store_files.os, "link", cross_device)
    store = FileStore(tmp_path / "store", "file:///store")
    info = await store.write_backup(NAME, {DATA_FILE: src}, BackupInfo("3.5.30", 1))
    stored = store.root / NAME / DATA_FILE
    assert not src.samefile(stored)
    assert stored.read_bytes() == src.read_bytes()
    assert info.checksums[DATA_FILE] == hashlib.sha256(src.read_bytes()).hexdigest()
