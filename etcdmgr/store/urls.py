"""Backup store and discovery locations given as URLs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from etcdmgr.model.errors import EtcdmgrError
from etcdmgr.store.deadline import DEFAULT_TIMEOUT
from etcdmgr.store.errors import StoreError
from etcdmgr.store.file_store import FileStore
from etcdmgr.store.interface import BackupStore
from etcdmgr.store.schemes import SCHEMES, SUPPORTED

if TYPE_CHECKING:
    from etcdmgr.store.object_config import ObjectSettings


def local_path(url: str, what: str, error: type[EtcdmgrError]) -> Path:
    """The folder of a file:///abs/path URL (a bare absolute path is accepted too, as the original does)."""
    if not url:
        raise error(f"{what}: no location given (expected e.g. file:///var/lib/etcd-backups)")
    if url.startswith("/"):
        return Path(url)
    parts = urlsplit(url)
    if parts.scheme != "file":
        scheme = parts.scheme or "(none)"
        raise error(f"{what} {url!r}: scheme {scheme!r} is not supported; use {SUPPORTED}")
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise error(f"{what} {url!r}: a file URL needs an absolute path, e.g. file:///var/lib/etcd-backups")
    if parts.query or parts.fragment:
        raise error(f"{what} {url!r}: a file URL takes no query or fragment")
    return Path(unquote(parts.path))


def object_store_settings(
    url: str, what: str, error: type[EtcdmgrError], ca_file: Path | None = None
) -> ObjectSettings | None:
    """How to reach the object store of ``url`` (from the environment); None for file URLs."""
    if urlsplit(url).scheme.lower() not in SCHEMES:
        return None
    from etcdmgr.store.object_config import object_settings, parse_object_url

    location = parse_object_url(url, what, error)
    return None if location is None else object_settings(location, os.environ, error, ca_file)


def open_store(url: str, timeout: float = DEFAULT_TIMEOUT, ca_file: Path | None = None) -> BackupStore:
    """The backup store at ``url``, whose calls fail (StoreError) after ``timeout`` seconds;
    raises StoreError for URLs it cannot serve. ``ca_file`` (PEM) is trusted for an object
    store's endpoint besides the system's roots. Object stores load their library only here."""
    settings = object_store_settings(url, "backup store", StoreError, ca_file)
    if settings is None:
        return FileStore(local_path(url, "backup store", StoreError), url, timeout)
    from etcdmgr.store.object_store import ObjectStore

    return ObjectStore(settings, timeout)
