"""Restore drills against real etcd: a good backup passes with the live member's figures; a
backup made bad before its checksums were computed fails and says why; a keyspace that differs
from the recorded figures fails; an inherited ETCD_* variable never reaches the throw-away etcd."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest
from etcd_helpers import binaries_or_skip, client_url, launch, running

from etcdmgr.backup import take_backup
from etcdmgr.backup.drill import drill_backup
from etcdmgr.backup.take import FAULT_TRUNCATE_SNAPSHOT, BackupResult
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.versions import DEFAULT_BIN_DIRS
from etcdmgr.model.checks import KeyspaceFigures
from etcdmgr.model.ids import PeerId
from etcdmgr.store import FileStore
from etcdmgr.store.layout import VERIFY_FILE

pytestmark = pytest.mark.etcd

NODE = PeerId("drill-node")


async def backup_of_a_busy_member(
    tmp_path: Path, ip: str, version: str = "3.5.30"
) -> tuple[FileStore, BackupResult]:
    """Writes, overwrites, deletes and a compaction, then a backup, then more writes."""
    binaries = binaries_or_skip(version)
    store = FileStore(tmp_path / "store", "file:///store")
    client = EtcdClient([client_url(ip)], binaries)
    async with running(launch(binaries, tmp_path / "src", "m1", ip)):
        for i in range(30):
            await client.put(f"k/{i}", f"v{i}")
        await client.put("k/3", "changed")
        await client._ctl(["del", "k/4"], "del", json_out=False)
        await client._ctl(["compact", "10"], "compact", json_out=False)
        result = await take_backup(client, client_url(ip), store, None, version, tmp_path, with_v2=False)
        await client.put("k/after", "not in the backup")
    return store, result


async def test_a_good_backup_passes_with_the_live_members_figures(tmp_path: Path) -> None:
    store, result = await backup_of_a_busy_member(tmp_path, "127.0.78.1")
    recorded = KeyspaceFigures.from_bytes((store.root / result.name / VERIFY_FILE).read_bytes())
    assert recorded.keys == 29 and recorded.hash is not None and recorded.compact_revision == 10

    record = await drill_backup(store, result.name, DEFAULT_BIN_DIRS, tmp_path / "drill", NODE)
    assert record.passed, record.reason
    assert record.figures == KeyspaceFigures(recorded.revision, 29, recorded.hash, 10)
    assert record.reason == f"{recorded.text()}: as the live member showed when it was taken"
    assert record.node == NODE and record.etcd_version == "3.5.30" and record.seconds > 0
    assert not (tmp_path / "drill").exists(), "scratch files are removed"


async def test_a_backup_made_bad_before_its_checksums_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAULT_TRUNCATE_SNAPSHOT, "1")
    store, result = await backup_of_a_busy_member(tmp_path, "127.0.78.2")
    monkeypatch.delenv(FAULT_TRUNCATE_SNAPSHOT)
    assert "etcd.backup.gz" in (await store.read_backup_info(result.name)).checksums

    record = await drill_backup(store, result.name, DEFAULT_BIN_DIRS, tmp_path / "drill", NODE)
    assert not record.passed
    assert "snapshot restore" in record.reason, record.reason
    assert record.figures is None


async def test_a_keyspace_that_differs_from_the_recorded_figures_fails(tmp_path: Path) -> None:
    store, result = await backup_of_a_busy_member(tmp_path, "127.0.78.3")
    folder = store.root / result.name
    figures = json.loads((folder / VERIFY_FILE).read_text())
    figures["keys"] += 1  # as if the live member had held one more key than the snapshot has
    body = json.dumps(figures).encode()
    (folder / VERIFY_FILE).write_bytes(body)
    sums = [line for line in (folder / "SHA256SUMS").read_text().splitlines() if VERIFY_FILE not in line]
    sums.append(f"{hashlib.sha256(body).hexdigest()}  {VERIFY_FILE}")
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")

    record = await drill_backup(store, result.name, DEFAULT_BIN_DIRS, tmp_path / "drill", NODE)
    assert not record.passed
    assert record.reason == f"the restored keyspace differs: 29 keys, the live member had {figures['keys']}"


async def test_inherited_etcd_variables_never_reach_the_throw_away_etcd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, result = await backup_of_a_busy_member(tmp_path, "127.0.78.4")
    # A metrics URL the managed member listens on: a scratch etcd that inherited it would fail
    # to bind it, and the drill would never get a healthy member.
    with socket.socket() as taken:
        taken.bind(("127.0.78.4", 0))
        taken.listen()
        monkeypatch.setenv("ETCD_LISTEN_METRICS_URLS", f"http://127.0.78.4:{taken.getsockname()[1]}")
        record = await drill_backup(store, result.name, DEFAULT_BIN_DIRS, tmp_path / "drill", NODE)
    assert record.passed, record.reason
