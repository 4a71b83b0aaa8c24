"""take_backup -> fetch_backup -> restore_data_dir -> start -> restore_v2, with real etcd:
v3 keys keep their revisions, v2 keys come back from the extra file; backups the original
wrote restore too; a 3.5 backup restores into 3.3."""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from etcd_helpers import binaries_or_skip, client_url, launch, peer_url, running

from etcdmgr.backup import fetch_backup, restore_data_dir, restore_v2, take_backup
from etcdmgr.backup.v2file import V2_FILE
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.etcdctl import KeyValue
from etcdmgr.etcd.http import V2Node
from etcdmgr.etcd.versions import EtcdBinaries, has_v2_api
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.store import FileStore
from etcdmgr.store.layout import CHECKSUMS_FILE, DATA_FILE, META_FILE, VERIFY_FILE

pytestmark = pytest.mark.etcd

V2_KEYS = [V2Node("/v2/a", "one", None), V2Node("/v2/empty", None, None), V2Node("/v2/sub/b", "two", None)]


async def fill(client: EtcdClient) -> list[KeyValue]:
    """Some v3 keys, one overwritten and one deleted so revisions are not trivially 1..n."""
    for i in range(10):
        await client.put(f"k/{i}", f"v{i}")
    await client.put("k/3", "changed")
    await client.put("k/\u00e9t\u00e9", "caf\u00e9 \n line")
    return await client.get_prefix("k/")


async def restore_and_check(
    binaries: EtcdBinaries, store: FileStore, name: str, root: Path, ip: str
) -> tuple[list[KeyValue], list[V2Node]]:
    """Restore backup `name` into a fresh single member on `ip`; its v3 keys and v2 keys."""
    fetched = await fetch_backup(store, name, root / "fetch")
    member = launch(binaries, root, "r1", ip, token="restored")
    await restore_data_dir(
        binaries, fetched, member.data_dir, "r1", {"r1": [peer_url(ip)]}, "restored", [peer_url(ip)]
    )
    client = EtcdClient([client_url(ip)], binaries)
    async with running(member):
        await restore_v2(client, fetched)
        [m] = await client.member_list()
        assert m.name == "r1"
        v2 = await client.dump_v2() if has_v2_api(binaries.version) else []
        return await client.get_prefix("k/"), v2


@pytest.mark.parametrize(
    ("version", "n"), [("3.3.25", 1), ("3.4.23", 3), ("3.5.30", 5)], ids=["3.3", "3.4", "3.5"]
)
async def test_backup_then_restore(tmp_path: Path, version: str, n: int) -> None:
    binaries = binaries_or_skip(version)
    ip, new_ip = f"127.0.77.{n}", f"127.0.77.{n + 1}"
    store = FileStore(tmp_path / "store", "file:///store")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    client = EtcdClient([client_url(ip)], binaries)
    spec = ClusterSpec(1, version)
    async with running(launch(binaries, tmp_path / "src", "m1", ip)):
        before = await fill(client)
        await client.load_v2(V2_KEYS)
        result = await take_backup(
            client, client_url(ip), store, spec, version, scratch, with_v2=True,
            now=datetime(2024, 6, 15, 12, 0, 0, tzinfo=UTC),
        )  # fmt: skip
    assert result.name == "2024-06-15T12:00:00Z-000001"
    assert result.v2_keys == len(V2_KEYS)
    assert list(scratch.iterdir()) == []  # scratch cleaned up
    assert await store.list_backups() == [result.name]
    info = await store.read_backup_info(result.name)
    assert info.etcd_version == version and info.cluster_spec == spec and info.timestamp == 1718452800
    assert set(info.checksums) == {DATA_FILE, V2_FILE, VERIFY_FILE}
    # The size counts the data (snapshot and v2 keys), not the drill's small figures file.
    assert result.size == sum((store.root / result.name / f).stat().st_size for f in (DATA_FILE, V2_FILE))

    after, v2 = await restore_and_check(binaries, store, result.name, tmp_path / "new", new_ip)
    assert after == before  # same values, same create/mod revisions and versions
    assert v2 == V2_KEYS


async def test_backup_without_v2_and_downgrade_3_5_to_3_3(tmp_path: Path) -> None:
    source, target = binaries_or_skip("3.5.30"), binaries_or_skip("3.3.25")
    ip, new_ip = "127.0.77.7", "127.0.77.8"
    store = FileStore(tmp_path / "store", "file:///store")
    client = EtcdClient([client_url(ip)], source)
    async with running(launch(source, tmp_path / "src", "m1", ip)):
        before = await fill(client)
        result = await take_backup(client, client_url(ip), store, None, "3.5.30", tmp_path, with_v2=False)
    assert result.v2_keys is None
    assert {p.name for p in (store.root / result.name).iterdir()} == {CHECKSUMS_FILE, DATA_FILE, META_FILE, VERIFY_FILE}
    fetched = await fetch_backup(store, result.name, tmp_path / "fetch")
    assert fetched.v2 is None and fetched.info.cluster_spec is None

    after, v2 = await restore_and_check(target, store, result.name, tmp_path / "new", new_ip)
    assert after == before
    assert v2 == []


async def test_restore_backup_written_by_the_original(tmp_path: Path) -> None:
    """What etcd-manager writes: `etcdctl snapshot save`, gzip, and its jsonpb meta; no checksums."""
    binaries = binaries_or_skip("3.4.23")
    ip, new_ip = "127.0.77.9", "127.0.77.10"
    client = EtcdClient([client_url(ip)], binaries)
    async with running(launch(binaries, tmp_path / "src", "m1", ip)):
        before = await fill(client)
        await client.snapshot_save(tmp_path / "snapshot.db")
    name = "2019-01-14T15:26:45Z-000001"
    folder = tmp_path / "store" / name
    folder.mkdir(parents=True)
    with (tmp_path / "snapshot.db").open("rb") as f, gzip.open(folder / DATA_FILE, "wb") as z:
        shutil.copyfileobj(f, z)
    (folder / META_FILE).write_bytes(
        b'{\n  "etcdVersion": "3.4.13",\n  "timestamp": "1547479605",\n  "clusterSpec": {\n'
        b'    "memberCount": 3,\n    "etcdVersion": "3.4.13"\n  }\n}'
    )
    store = FileStore(tmp_path / "store", "file:///store")
    assert await store.list_backups() == [name]

    after, _ = await restore_and_check(binaries, store, name, tmp_path / "new", new_ip)
    assert after == before
