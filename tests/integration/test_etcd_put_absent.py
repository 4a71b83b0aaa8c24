"""Restored v2 keys are copied into v3 only where v3 holds no such key: newer v3 data is kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from etcd_helpers import binaries_or_skip, client_url, launch, running

from etcdmgr.etcd.client import EtcdClient

pytestmark = pytest.mark.etcd


@pytest.mark.parametrize(
    ("version", "ip"), [("3.3.25", "127.0.56.1"), ("3.4.23", "127.0.56.2"), ("3.5.30", "127.0.56.3")]
)
async def test_existing_v3_keys_are_never_overwritten(tmp_path: Path, version: str, ip: str) -> None:
    binaries = binaries_or_skip(version)
    client = EtcdClient([client_url(ip)], binaries)
    async with running(launch(binaries, tmp_path, "m1", ip)):
        await client.put("/registry/pods/a", "new")
        await client.put("/registry/pods/c", "new")
        before = {kv.key: kv.mod_revision for kv in await client.get_prefix("/registry/")}
        # 250 keys in batches of 100: the two present ones fall into the first batch, which is
        # then retried without them.
        items = [(f"/registry/pods/{i:03d}", f"old {i}") for i in range(248)]
        items += [("/registry/pods/a", "old"), ("/registry/pods/c", "old")]
        items.sort()

        assert await client.put_absent(items, version) == (248, 2)

        assert await client.get("/registry/pods/a") == "new"
        assert await client.get("/registry/pods/c") == "new"
        after = {kv.key: kv for kv in await client.get_prefix("/registry/")}
        assert {k: after[k].mod_revision for k in before} == before, "present keys untouched"
        assert len(after) == 250
        assert after["/registry/pods/007"].value == "old 7"

        # Copied again (a restore retried): nothing is written twice.
        assert await client.put_absent(items, version) == (0, 250)
