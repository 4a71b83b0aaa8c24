"""What the object store does beyond the file:// contract: it spends few requests (listings
reused for the poll interval, documents fetched again only on a new ETag, its own writes seen at
once), streams large backups in parts without leaving a half-written one listed, refuses claims
on a server that ignores If-None-Match, and serves discovery records in a bucket.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import obstore
import pytest
import trio
from object_servers import BUCKET, RawStore, Server, unique_prefix

from etcdmgr.discovery import open_discovery
from etcdmgr.discovery.object_discovery import ObjectDiscovery
from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command, RestoreBackup
from etcdmgr.model.peer import PeerEndpoint
from etcdmgr.store import StoreError
from etcdmgr.store import object_client as client_module
from etcdmgr.store.object_client import PART_SIZE, ObjectClient
from etcdmgr.store.object_store import ObjectStore
from etcdmgr.store.urls import object_store_settings

SPEC = ClusterSpec(member_count=3, etcd_version="3.5.30")
BACKUP = "2024-06-15T12:00:00Z-000001"


@pytest.fixture
def s3(moto_server: Server, monkeypatch: pytest.MonkeyPatch) -> tuple[str, RawStore]:
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    prefix = unique_prefix()
    return moto_server.url(prefix), moto_server.raw(prefix)


def object_store(url: str, poll_interval: float) -> ObjectStore:
    settings = object_store_settings(url, "backup store", StoreError)
    assert settings is not None
    return ObjectStore(settings, poll_interval=poll_interval)


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Calls etcdmgr makes to obstore, by kind (a listing counted once per call)."""
    counts: Counter[str] = Counter()

    def counting(kind: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            counts[kind] += 1
            return real(*args, **kwargs)

        return call

    for kind in ("get", "put", "list", "list_with_delimiter", "delete"):
        monkeypatch.setattr(client_module.obstore, kind, counting(kind, getattr(obstore, kind)))
    yield counts


async def poll_like_a_leader(store: ObjectStore) -> None:
    """What a leader's cycle reads from the store."""
    await store.read_spec()
    await store.read_created()
    await store.list_commands()
    await store.list_backups()


# -- requests ---------------------------------------------------------------------------------


async def test_a_settled_leader_lists_once_per_interval(
    s3: tuple[str, RawStore], requests: Counter[str]
) -> None:
    url, _ = s3
    writer = object_store(url, 0)
    await writer.write_spec(SPEC)
    await writer.write_created(1)
    await writer.add_command(Command("", 1_000_000_000, RestoreBackup(SPEC, BACKUP)))
    reader = object_store(url, poll_interval=2.0)  # longer than a slow first poll on a loaded machine
    requests.clear()
    await poll_like_a_leader(reader)
    # One listing of control/ and one of the store, then each document once.
    assert requests == {"list": 2, "get": 3}
    requests.clear()
    for _ in range(20):
        await poll_like_a_leader(reader)
    assert requests == {}, "served from what it saw within the poll interval"
    await trio.sleep(2.1)
    await poll_like_a_leader(reader)
    assert requests == {"list": 1}, "a new listing of control/; no document changed, none fetched"


async def test_a_change_by_another_writer_is_seen_after_the_interval(
    s3: tuple[str, RawStore], requests: Counter[str]
) -> None:
    url, _ = s3
    await object_store(url, 0).write_spec(SPEC)
    # Long enough that a slow write to the server (a loaded machine) still ends within it.
    reader = object_store(url, poll_interval=2.0)
    assert await reader.read_spec() == SPEC
    seen = trio.current_time()
    changed = ClusterSpec(member_count=5, etcd_version="3.5.30")
    await object_store(url, 0).write_spec(changed)
    assert await reader.read_spec() == SPEC  # within the interval: what it saw
    await trio.sleep_until(seen + 2.05)
    requests.clear()
    assert await reader.read_spec() == changed
    assert requests == {"list": 1, "get": 1}, "the new ETag is fetched"


async def test_its_own_writes_are_seen_at_once(
    s3: tuple[str, RawStore], requests: Counter[str], tmp_path: Path
) -> None:
    url, _ = s3
    store = object_store(url, poll_interval=3600)
    assert await store.read_spec() is None
    assert await store.list_backups() == []
    await store.write_spec(SPEC)
    name = await store.add_command(Command("", 1_000_000_000, RestoreBackup(SPEC, BACKUP)))
    data = tmp_path / "db.gz"
    data.write_bytes(b"snapshot")
    await store.write_backup(BACKUP, {"etcd.backup.gz": data}, BackupInfo("3.5.30", 1))
    requests.clear()
    assert await store.read_spec() == SPEC
    assert [c.name for c in (await store.list_commands()).commands] == [name]
    assert await store.list_backups() == [BACKUP]
    assert requests == {}, "all from what it wrote"
    await store.remove_command(name)
    await store.delete_backup(BACKUP)
    assert (await store.list_commands()).commands == []
    assert await store.list_backups() == []


async def test_an_emptied_store_is_an_error_not_a_new_cluster(s3: tuple[str, RawStore]) -> None:
    url, raw = s3
    store = object_store(url, 0)
    await store.write_spec(SPEC)
    assert await store.create_created_marker(1)
    for key in raw.keys():  # a lifecycle rule, an operator's rm -r
        raw.delete(key)
    with pytest.raises(StoreError, match="holds no objects any more"):
        await store.read_created()
    with pytest.raises(StoreError, match="holds no objects any more"):
        await store.create_created_marker(2)
    assert raw.keys() == []
    fresh = object_store(url, 0)  # a restarted daemon: a new store
    assert await fresh.read_created() is None


# -- large backups ----------------------------------------------------------------------------


async def test_a_large_backup_goes_in_parts_and_comes_back_whole(
    s3: tuple[str, RawStore], tmp_path: Path
) -> None:
    url, raw = s3
    big = tmp_path / "db.gz"
    with big.open("wb") as f:
        for i in range(5 * PART_SIZE // (1 << 20) // 2):
            f.write(hashlib.sha256(str(i).encode()).digest() * (1 << 15))  # 1 MiB each
    store = object_store(url, 0)
    written = await store.write_backup(BACKUP, {"etcd.backup.gz": big}, BackupInfo("3.5.30", 1))
    assert written.checksums["etcd.backup.gz"] == hashlib.sha256(big.read_bytes()).hexdigest()
    etag = obstore.head(raw.store, f"{BACKUP}/etcd.backup.gz")["e_tag"]  # type: ignore[arg-type]
    assert etag is not None and "-" in etag, "a multipart upload's ETag names its parts"
    out = await store.fetch_backup_file(BACKUP, "etcd.backup.gz", tmp_path / "out" / "db.gz")
    assert out.read_bytes() == big.read_bytes()


async def test_an_upload_cut_short_is_never_listed(
    s3: tuple[str, RawStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, raw = s3
    big = tmp_path / "db.gz"
    big.write_bytes(b"x" * (3 * PART_SIZE))
    real_chunks = client_module._chunks

    def cut_short(src: Path, digest: Any) -> Iterator[bytes]:
        for n, chunk in enumerate(real_chunks(src, digest)):
            if n == 12:
                raise OSError(5, "Input/output error")
            yield chunk

    monkeypatch.setattr(client_module, "_chunks", cut_short)
    store = object_store(url, 0)
    with pytest.raises(StoreError):
        await store.write_backup(BACKUP, {"etcd.backup.gz": big}, BackupInfo("3.5.30", 1))
    assert await object_store(url, 0).list_backups() == []
    assert [k for k in raw.keys() if k.startswith(BACKUP)] == []


# -- create-if-absent -------------------------------------------------------------------------


async def test_a_server_ignoring_if_none_match_may_not_create_or_restore(
    s3: tuple[str, RawStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, raw = s3
    real_put = ObjectClient.put

    def ignoring(self: ObjectClient, key: str, data: bytes, *, create: bool = False) -> str | None:
        return real_put(self, key, data)  # as some S3-compatible servers do: the condition is dropped

    monkeypatch.setattr(ObjectClient, "put", ignoring)
    store = object_store(url, 0)
    await store.write_spec(SPEC)
    problem = await store.check_create_if_absent()
    assert problem is not None and "ignores create-if-absent writes" in problem
    assert "refusing to create or restore a cluster" in problem
    with pytest.raises(StoreError, match="ignores create-if-absent writes"):
        await store.create_created_marker(1)
    name = await store.add_command(Command("", 1_000_000_000, RestoreBackup(SPEC, BACKUP)))
    with pytest.raises(StoreError, match="ignores create-if-absent writes"):
        await store.claim(f"control/{name}/etcdmgr-claim.json", b"x")
    assert "control/etcd-cluster-created" not in raw.keys()
    assert not [k for k in raw.keys() if "probe" in k], "the probe object is removed"


# -- discovery in a bucket --------------------------------------------------------------------

EP = [PeerEndpoint("127.0.0.1", 8000), PeerEndpoint("10.0.0.1", 8001)]


async def test_discovery_records_in_a_bucket(
    moto_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    requests: Counter[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    prefix = unique_prefix()
    raw = moto_server.raw(prefix)
    a, b = open_discovery(f"s3://{BUCKET}/{prefix}"), open_discovery(f"s3://{BUCKET}/{prefix}")
    assert isinstance(a, ObjectDiscovery)
    await a.publish("peer-A_1", EP[:1])
    assert raw.get("peer-A_1") == b'{"id":"peer-A_1","endpoints":[{"ip":"127.0.0.1","port":8000}]}'
    await b.publish("b", EP[1:])
    raw.put("y", b'{"id":"y","endpoints":null}')  # as the original writes an empty list
    raw.put("junk", b"{not json")
    raw.put("nested/z", b"{}")
    with caplog.at_level(logging.WARNING):
        assert await a.poll() == {"peer-A_1": EP[:1], "b": EP[1:], "y": []}
    assert "skipping discovery record" in caplog.text and "junk" in caplog.text
    requests.clear()
    await a.poll()
    assert requests == {"list_with_delimiter": 1, "get": 1}, (
        "one listing; only the unreadable record is read again"
    )
    raw.delete("peer-A_1")  # a lifecycle rule removed our own record
    assert "peer-A_1" in await a.poll()
    assert raw.get("peer-A_1") is not None, "written again"
    await a.withdraw("peer-A_1")
    await a.withdraw("peer-A_1")  # already gone: fine
    assert set(await b.poll()) == {"b", "y"}
