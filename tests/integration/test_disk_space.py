"""Scratch room is checked before it is used: on a small filesystem (a 20 MiB tmpfs) a backup
or a restore that would not fit is refused with how much is missing, leaves nothing behind, and
etcd keeps serving; one that fits goes through."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from etcd_helpers import binaries_or_skip, client_url, launch, running
from harness import new_block

from etcdmgr.backup import fetch_backup, take_backup
from etcdmgr.backup.errors import NotEnoughSpace
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.model import EtcdNode
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.node.config import NodeConfig
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.service import NodeService
from etcdmgr.peer.calls import DoRestoreArgs
from etcdmgr.store import FileStore

pytestmark = pytest.mark.etcd

VERSION = "3.5.30"
MIB = 1 << 20


@contextmanager
def small_disk(path: Path, size: str = "20m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` for the test; always unmounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


async def fill(client: EtcdClient, megabytes: int, *, compressible: bool) -> None:
    """About `megabytes` MiB of values, 1 MiB per key (etcd takes at most 1.5 MiB per request)."""

    def value(i: int) -> str:
        return "0" * MIB if compressible else os.urandom(MIB // 2).hex()

    await client.put_absent([(f"big/{i}", value(i)) for i in range(megabytes)], VERSION, batch=1)


async def test_a_backup_that_does_not_fit_in_its_scratch_folder_is_refused(tmp_path: Path) -> None:
    binaries = binaries_or_skip(VERSION)
    ip = f"{new_block()}.1"
    store = FileStore(tmp_path / "store", "file:///store")
    client = EtcdClient([client_url(ip)], binaries)
    with small_disk(tmp_path / "small") as scratch:
        async with running(launch(binaries, tmp_path / "src", "m1", ip)):
            await client.put("small", "1")
            fits = await take_backup(
                client, client_url(ip), store, ClusterSpec(1, VERSION), VERSION, scratch, with_v2=True
            )
            assert fits.name in await store.list_backups()

            await fill(client, 12, compressible=False)
            with pytest.raises(NotEnoughSpace) as refused:
                await take_backup(
                    client, client_url(ip), store, ClusterSpec(1, VERSION), VERSION, scratch, with_v2=True
                )
            found = re.fullmatch(
                rf"not enough free space for a backup of {client_url(ip)} \(a ([\d.]+) MiB database\) under "
                rf"{scratch}: it needs ([\d.]+) MiB and 2.0 MiB stay free for etcd, but only ([\d.]+) MiB are "
                r"free: ([\d.]+) MiB missing",
                str(refused.value),
            )
            assert found, refused.value
            db, need, free, missing = (float(x) for x in found.groups())
            assert db > 12 and abs(need - 2 * db) < 0.2 and abs(missing - (need + 2 - free)) < 0.2
            assert list(scratch.iterdir()) == [], "nothing written"
            assert await store.list_backups() == [fits.name]
            assert await client.endpoint_health(client_url(ip)), "etcd serves on"


async def test_a_restore_whose_data_does_not_fit_is_refused_before_anything_changes(tmp_path: Path) -> None:
    binaries = binaries_or_skip(VERSION)
    ip = f"{new_block()}.1"
    store = FileStore(tmp_path / "store", "file:///store")
    client = EtcdClient([client_url(ip)], binaries)
    async with running(launch(binaries, tmp_path / "src", "m1", ip)):
        await fill(client, 14, compressible=True)  # a database of about 20 MiB that packs to little
        backup = await take_backup(
            client, client_url(ip), store, ClusterSpec(1, VERSION), VERSION, tmp_path, with_v2=False
        )
    size = (await fetch_backup(store, backup.name, tmp_path / "roomy")).snapshot.stat().st_size
    assert 18 * MIB < size <= 30 * MIB, size

    with small_disk(tmp_path / "small") as small:
        # Unpacking it on a 20 MiB disk: refused (the packed file was there already).
        with pytest.raises(
            NotEnoughSpace, match=r"not enough free space for unpacking backup .* MiB missing"
        ):
            await fetch_backup(store, backup.name, small / "fetch")
        assert list((small / "fetch").iterdir()) == []

    with small_disk(tmp_path / "node", "40m") as disk:
        # A node whose data dir is on a 40 MiB disk: the snapshot fits in its scratch folder, but
        # not a second copy for the new data dir. It says so before stopping or moving anything.
        me = EtcdNode("m1", (f"http://{ip}:2380",), (client_url(ip),), (f"http://{ip}:8001",))
        config = NodeConfig(
            ip, ip, me.peer_urls, me.client_urls, me.quarantined_client_urls, etcd_insecure=True
        )
        layout = DataLayout(disk)
        node = NodeService(config, layout, "m1", store)
        expected = rf"restoring backup {backup.name} \(a {size / MIB:.1f} MiB database\)"
        with pytest.raises(NotEnoughSpace, match=expected):
            await node.restore_backup(
                DoRestoreArgs(backup=backup.name, cluster_token="restored", nodes=(me,), etcd_version=VERSION)
            )
        assert not layout.data().exists() and not layout.state.exists()
        assert list(layout.scratch().iterdir()) == [], "the fetched backup is removed"
