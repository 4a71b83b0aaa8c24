"""Backup store and discovery locations given as URLs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from etcdmgr.model.errors import EtcdmgrError
from etcdmgr.store.errors import StoreError
from etcdmgr.store.file_store import DEFAULT_TIMEOUT, FileStore
from etcdmgr.store.interface import BackupStore


def local_path(url: str, what: str, error: type[EtcdmgrError]) -> Path:
    """The folder of a file:///abs/path URL (a bare absolute path is accepted too, as the original does)."""
    if not url:
        raise error(f"{what}: no location given (expected e.g. file:///var/lib/etcd-backups)")
    if url.startswith("/"):
        return Path(url)
    parts = urlsplit(url)
    if parts.scheme != "file":
        scheme = parts.scheme or "(none)"
        raise error(f"{what} {url!r}: scheme {scheme!r} is not supported; use file:///absolute/path")
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise error(f"{what} {url!r}: a file URL needs an absolute path, e.g. file:///var/lib/etcd-backups")
    if parts.query or parts.fragment:
        raise error(f"{what} {url!r}: a file URL takes no query or fragment")
    return Path(unquote(parts.path))


def open_store(url: str, timeout: float = DEFAULT_TIMEOUT) -> BackupStore:
    """The backup store at ``url``, whose calls fail (StoreError) after ``timeout`` seconds;
    raises StoreError for URLs it cannot serve."""
    return FileStore(local_path(url, "backup store", StoreError), url, timeout)
