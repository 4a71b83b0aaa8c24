"""One real etcd member per version: start, health, keys, v2 keys, members, status, stop."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio
from etcd_helpers import START_TIMEOUT, binaries_or_skip, client_url, launch

from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.http import V2Node
from etcdmgr.etcd.process import EtcdProcess

pytestmark = pytest.mark.etcd


@pytest.mark.parametrize(
    ("version", "ip"), [("3.3.25", "127.0.55.1"), ("3.4.23", "127.0.55.2"), ("3.5.30", "127.0.55.3")]
)
async def test_single_member(tmp_path: Path, version: str, ip: str) -> None:
    binaries = binaries_or_skip(version)
    member = launch(binaries, tmp_path, "m1", ip)
    client = EtcdClient([client_url(ip)], binaries)
    proc = await EtcdProcess.start(member, tmp_path / "log")
    async with proc:
        with trio.fail_after(START_TIMEOUT):
            took = await proc.wait_healthy(client)
        print(f"etcd {version}: healthy {took:.2f} s after start")

        [m] = await client.member_list()
        assert (m.name, m.peer_urls, m.client_urls, m.is_learner) == (
            "m1",
            (f"http://{ip}:2380",),
            (client_url(ip),),
            False,
        )
        status = await client.endpoint_status(client_url(ip))
        assert status.version == version
        assert status.leader_id == status.member_id == m.id

        await client.put("a key", "-a value with a leading dash")
        await client.put("dir/x", "1")
        await client.put("dir/x", "2")
        assert await client.get("a key") == "-a value with a leading dash"
        assert await client.get("missing") is None
        [kv] = await client.get_prefix("dir/")
        assert (kv.key, kv.value, kv.version) == ("dir/x", "2", 2)
        assert kv.mod_revision > kv.create_revision

        items = [
            V2Node("/registry/a", "1", None),
            V2Node("/registry/sub/b", "two", None),
            V2Node("/empty", None, None),
            V2Node("/lease", "x", 300),
        ]
        assert await client.load_v2(items) == 4
        dumped = await client.dump_v2()
        assert [(n.key, n.value) for n in dumped] == sorted((n.key, n.value) for n in items)
        ttl = next(n.ttl for n in dumped if n.key == "/lease")
        assert ttl is not None and 290 < ttl <= 300
        assert await client.get_prefix("/registry") == []  # v2 and v3 keyspaces are apart

        t0 = time.monotonic()
    print(f"etcd {version}: stopped in {time.monotonic() - t0:.2f} s, exit code {proc.returncode}")
    assert proc.returncode is not None
    assert not proc.pid_file.exists()
    assert "etcdmgr starts etcd" in proc.log_tail(lines=10_000)


async def test_parent_env_disables_v2(tmp_path: Path) -> None:
    binaries = binaries_or_skip("3.5.30")
    ip = "127.0.55.4"
    client = EtcdClient([client_url(ip)], binaries)
    member = launch(binaries, tmp_path, "m1", ip)
    parent = {"PATH": "/usr/bin:/bin", "ETCD_ENABLE_V2": "false", "ETCD_LISTEN_CLIENT_URLS": "http://x:1"}
    async with await EtcdProcess.start(member, tmp_path / "log", parent_env=parent) as proc:
        with trio.fail_after(START_TIMEOUT):
            await proc.wait_healthy(client)  # the parent's ETCD_LISTEN_CLIENT_URLS was dropped
        with pytest.raises(EtcdError, match="HTTP 404"):
            await client.dump_v2()
