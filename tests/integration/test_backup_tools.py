"""The offline tools against real etcd: `etcdmgr backup --once` and `etcdmgr dump`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import trio
from etcd_helpers import binaries_or_skip, client_url, launch, running

from etcdmgr.backup.v2file import V2_FILE
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.http import V2Node
from etcdmgr.store import FileStore
from etcdmgr.store.layout import DATA_FILE, VERIFY_FILE

pytestmark = pytest.mark.etcd


async def run_tool(module: str, *argv: str, tmp: Path | None = None) -> trio.CompletedProcess[bytes]:
    env = dict(os.environ, TMPDIR=str(tmp)) if tmp else None
    code = f"import sys; from etcdmgr.cli.{module} import main; sys.exit(main(sys.argv[1:]))"
    with trio.fail_after(120):
        return await trio.run_process(
            [sys.executable, "-c", code, *argv],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )


async def test_backup_once_then_dump(tmp_path: Path) -> None:
    binaries = binaries_or_skip("3.5.30")
    ip = "127.0.77.20"
    client = EtcdClient([client_url(ip)], binaries)
    url = f"file://{tmp_path / 'store'}"
    async with running(launch(binaries, tmp_path / "src", "m1", ip)):
        await client.put("a", "1")
        await client.put("b/c", "caf\u00e9")
        await client.put("a", "2")
        await client.load_v2([V2Node("/old/key", "v2 value", None)])
        done = await run_tool(
            "backup_cmd", f"-backup-store={url}", f"--endpoints={client_url(ip)}", "--once", "--with-v2"
        )
        assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().startswith("backup ")

    store = FileStore(tmp_path / "store", url)
    [name] = await store.list_backups()
    info = await store.read_backup_info(name)
    assert info.etcd_version == "3.5.30"
    assert set(info.checksums) == {DATA_FILE, V2_FILE, VERIFY_FILE}

    # The etcd is stopped: dump needs nothing but the store.
    out = tmp_path / "dump.jsonl"
    (tmp_path / "tmp").mkdir()
    dumped = await run_tool("dump_cmd", f"--backup-store={url}", f"--out={out}", name, tmp=tmp_path / "tmp")
    assert dumped.returncode == 0, dumped.stderr.decode()
    assert "3 keys" in dumped.stderr.decode()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(d["api"], d["key"], d.get("value")) for d in lines] == [
        ("v3", "a", "2"),
        ("v3", "b/c", "caf\u00e9"),
        ("v2", "/old/key", "v2 value"),
    ]
    assert lines[0]["version"] == 2 and lines[0]["modRevision"] > lines[0]["createRevision"]
    assert os.listdir(tmp_path / "tmp") == []  # scratch etcd and downloads removed


async def test_backup_skips_a_follower_and_reports_errors(tmp_path: Path) -> None:
    binaries = binaries_or_skip("3.4.23")
    ips = {"m1": "127.0.77.21", "m2": "127.0.77.22"}
    url = f"file://{tmp_path / 'store'}"
    async with running(launch(binaries, tmp_path, "m1", ips["m1"], cluster=ips), healthy=False):
        async with running(launch(binaries, tmp_path, "m2", ips["m2"], cluster=ips)):
            client = EtcdClient([client_url(ips["m1"])], binaries)
            status = await client.endpoint_status(client_url(ips["m1"]))
            follower = ips["m2"] if status.member_id == status.leader_id else ips["m1"]
            done = await run_tool(
                "backup_cmd", f"--backup-store={url}", f"--endpoints={client_url(follower)}", "--once"
            )
            assert done.returncode == 0, done.stderr.decode()
            assert "is not the etcd leader" in done.stderr.decode()
    assert await FileStore(tmp_path / "store", url).list_backups() == []

    done = await run_tool(
        "backup_cmd", f"--backup-store={url}", "--endpoints=http://127.0.77.23:4001", "--once"
    )
    assert done.returncode == 1 and "no endpoint answered" in done.stderr.decode()
    done = await run_tool("dump_cmd", f"--backup-store={url}", "2020-01-01T00:00:00Z-000001")
    assert done.returncode == 1 and "no backup named" in done.stderr.decode()
    done = await run_tool("backup_cmd", "--endpoints=http://x")
    assert done.returncode == 2
