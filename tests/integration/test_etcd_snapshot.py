"""snapshot save -> gzip -> gunzip -> restore into a new data dir -> start: keys and revisions kept."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from etcd_helpers import binaries_or_skip, client_url, launch, peer_url, running

from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.snapshot import gunzip_file, gzip_file, snapshot_restore, snapshot_status

pytestmark = pytest.mark.etcd


@pytest.mark.parametrize(
    ("version", "ip", "new_ip"),
    [("3.4.23", "127.0.55.21", "127.0.55.22"), ("3.5.30", "127.0.55.23", "127.0.55.24")],
)
async def test_snapshot_round_trip(tmp_path: Path, version: str, ip: str, new_ip: str) -> None:
    binaries = binaries_or_skip(version)
    client = EtcdClient([client_url(ip)], binaries)
    snap = tmp_path / "snap.db"
    async with running(launch(binaries, tmp_path / "old", "m1", ip)):
        for i in range(20):
            await client.put(f"k/{i:02d}", f"v{i}")
        await client.put("k/05", "changed")
        before = await client.get_prefix("k/")
        revision = (await client.endpoint_status(client_url(ip))).revision
        t0 = time.monotonic()
        await client.snapshot_save(snap)
        print(f"etcd {version}: snapshot save {time.monotonic() - t0:.2f} s")
    assert not snap.with_name("snap.db.part").exists()
    assert (await snapshot_status(binaries, snap)).revision == revision

    await gzip_file(snap, tmp_path / "snap.db.gz")
    await gunzip_file(tmp_path / "snap.db.gz", tmp_path / "copy.db")
    assert (tmp_path / "copy.db").read_bytes() == snap.read_bytes()

    new = launch(binaries, tmp_path / "new", "r1", new_ip, token="restored")
    t0 = time.monotonic()
    await snapshot_restore(
        binaries,
        tmp_path / "copy.db",
        new.data_dir,
        name="r1",
        initial_cluster={"r1": [peer_url(new_ip)]},
        cluster_token="restored",
        peer_urls=[peer_url(new_ip)],
    )
    print(f"etcd {version}: snapshot restore {time.monotonic() - t0:.2f} s")
    with pytest.raises(EtcdError, match="exists"):
        await snapshot_restore(binaries, snap, new.data_dir, "r1", {"r1": [peer_url(new_ip)]}, "t", [])

    new_client = EtcdClient([client_url(new_ip)], binaries)
    async with running(new) as proc:
        print(f"etcd {version}: restored member healthy {time.monotonic() - proc.started_at:.2f} s")
        assert await new_client.get_prefix("k/") == before  # same values, same revisions
        assert (await new_client.endpoint_status(client_url(new_ip))).revision >= revision
        [m] = await new_client.member_list()
        assert m.name == "r1" and m.peer_urls == (peer_url(new_ip),)
