"""The operator's ctl commands against a store a simulated leader writes: `status` (table, JSON,
stale and degraded), `list-backups -o wide|json` with --since/--limit, `backup-now --wait`, and
`restore-backup --wait` following each phase or ending with the leader's reason."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from etcdmgr.cli import ctl_cmd
from etcdmgr.cli.ctl_backups import BackupWaitFailed, backup_now
from etcdmgr.cli.ctl_follow import RestoreFailed, follow_restore
from etcdmgr.cli.ctl_status import degraded, staleness
from etcdmgr.controller.claims import RestoreClaim
from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.checks import DrillRecord, KeyspaceFigures
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command, RestoreBackup
from etcdmgr.model.ids import BackupName, ClusterToken, CommandName, PeerId
from etcdmgr.model.status import ClusterStatus, DrillStatus, Outcome, PeerStatus
from etcdmgr.model.values import EtcdVersion
from etcdmgr.store import FileStore
from etcdmgr.store.layout import CLAIM_FILE, DRILL_FILE, VERIFY_FILE, command_file_key

V = EtcdVersion("3.5.16")
SPEC = ClusterSpec(3, V)
TOKEN = ClusterToken("tok")
PEERS = tuple(
    PeerStatus(PeerId(p), f"127.0.0.{i}:8000", True, "voting", True, V, False, TOKEN)
    for i, p in enumerate(("aaa", "bbb", "ccc"), 1)
)


def status(**changes: object) -> ClusterStatus:
    base = ClusterStatus(
        time=int(time.time()),
        leader=PeerId("aaa"),
        stale_after=30.0,
        spec=SPEC,
        action="Wait",
        reason="cluster is as specified",
        cluster_token=TOKEN,
        peers=PEERS,
        certificates={"etcd-manager-ca": int(time.time()) + 3650 * 86400},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def ctl(root: Path, *args: str) -> int:
    return ctl_cmd.main([f"--backup-store=file://{root}", *args])


def store_at(root: Path) -> FileStore:
    return FileStore(root, f"file://{root}")


def write_status(root: Path, s: ClusterStatus) -> None:
    trio.run(store_at(root).write_status, s.to_bytes())


def test_status_table_of_a_healthy_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_status(tmp_path, status())
    assert ctl(tmp_path, "status") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "cluster tok: spec 3 members, etcd 3.5.16; leader aaa"
    rows = table_rows("\n".join(lines[1:5]))
    assert rows[0] == {
        "PEER": "aaa",
        "ADDRESS": "127.0.0.1:8000",
        "ROLE": "leader",
        "DAEMON": "up",
        "MEMBER": "voting",
        "HEALTH": "healthy",
        "ETCD": "3.5.16",
        "QUARANTINED": "no",
        "PROBLEM": "",
    }
    assert [(r["PEER"], r["ROLE"]) for r in rows] == [("aaa", "leader"), ("bbb", ""), ("ccc", "")]
    assert "decision:     Wait: cluster is as specified" in lines
    assert "last backup:  none" in lines
    assert err == ""


def test_status_json_says_how_old_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    written = status(time=int(time.time()) - 5)
    write_status(tmp_path, written)
    assert ctl(tmp_path, "-o", "json", "status") == 0
    doc = json.loads(capsys.readouterr().out)
    assert ClusterStatus.from_json(doc["status"]) == written
    assert 5 <= doc["ageSeconds"] < 10 and doc["stale"] is False and doc["degraded"] == []


def test_a_stale_status_is_a_warning_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_status(tmp_path, status(time=int(time.time()) - 95))
    assert ctl(tmp_path, "status") == 1
    err = capsys.readouterr().err
    assert err.startswith("warning: the status is 1m3")
    assert "no leader has written it for 30s; are the daemons running and reaching the store?" in err


def test_a_leader_at_work_is_given_time_before_its_status_is_stale() -> None:
    now = time.time()
    assert staleness(status(time=int(now) - 300, acting=True), now) is None
    assert staleness(status(time=int(now) - 300), now) is not None


def test_what_degrades_the_cluster_is_named() -> None:
    now = time.time()
    peers = (
        PEERS[0],
        replace(PEERS[1], daemon=False, member_healthy=False),
        replace(PEERS[2], quarantined=True),
    )
    drill = DrillRecord(False, "the restored keyspace differs", PeerId("bbb"), int(now), 1.0)
    s = status(
        peers=peers,
        backup_failure=Outcome("TakeBackup", int(now), "no healthy member to back up"),
        certificates={"etcd-peers-ca": int(now) + 86400 + 30},
        drill=DrillStatus(BackupName("2026-01-01T00:00:00Z-000001"), drill),
    )
    assert degraded(s, now) == [
        "1 of 3 members serve clients",
        "the daemon of bbb does not answer the leader",
        "member bbb is unhealthy",
        "ccc is quarantined (serves no clients)",
        "the last backup failed: no healthy member to back up",
        "the last restore drill (backup 2026-01-01T00:00:00Z-000001) failed: the restored keyspace differs",
        "certificate etcd-peers-ca expires in 24h00m",
    ]


def test_no_status_yet_is_said_plainly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl(tmp_path, "status") == 1
    assert "no status in" in capsys.readouterr().err


# -- list-backups ------------------------------------------------------------------------------

NAMES = [BackupName(f"2026-01-0{d}T12:00:00Z-000001") for d in (1, 2, 3)]


def seed_backups(root: Path) -> None:
    async def seed() -> None:
        store = store_at(root)
        data = root.parent / "data"
        data.write_bytes(b"x" * 2000)
        for i, name in enumerate(NAMES):
            when = int(datetime(2026, 1, i + 1, 12, tzinfo=UTC).timestamp())
            await store.write_backup(name, {"etcd.backup.gz": data}, BackupInfo(V, when, SPEC))
        await store.write_backup_extra(NAMES[1], VERIFY_FILE, KeyspaceFigures(53, 49, 7).to_bytes())
        drill = DrillRecord(True, "as the live member showed", PeerId("bbb"), int(time.time()) - 60, 2.0)
        await store.write_backup_extra(NAMES[1], DRILL_FILE, drill.to_bytes())

    trio.run(seed)


def table_rows(out: str) -> list[dict[str, str]]:
    """The rows of an aligned table, cut at the header's column starts."""
    header, *lines = out.splitlines()
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    names = [header[a:b].strip() for a, b in bounds]
    return [{n: line[a:b].strip() for n, (a, b) in zip(names, bounds, strict=True)} for line in lines]


def test_list_backups_wide_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    seed_backups(root)
    assert ctl(root, "list-backups") == 0
    assert capsys.readouterr().out.split() == NAMES, "text stays the original's: names only"

    assert ctl(root, "-o", "wide", "list-backups") == 0
    rows = table_rows(capsys.readouterr().out)
    assert [r["NAME"] for r in rows] == NAMES
    assert rows[1] | {"AGE": "", "DRILL": rows[1]["DRILL"][:7]} == {
        "NAME": NAMES[1],
        "AGE": "",
        "SIZE": rows[1]["SIZE"],
        "ETCD": "3.5.16",
        "SPEC": "3 members",
        "CHECKSUMS": "yes",
        "REVISION": "53",
        "KEYS": "49",
        "DRILL": "passed ",
        "PROBLEM": "",
    }
    assert rows[1]["SIZE"].endswith(" KiB") and rows[1]["DRILL"] in ("passed 1m00s ago", "passed 1m01s ago")
    assert (rows[0]["REVISION"], rows[0]["DRILL"]) == ("-", "-")

    assert ctl(root, "-o", "json", "list-backups", "--limit=2") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in doc] == NAMES[1:]
    assert doc[0]["checksums"] is True and doc[0]["figures"] == {"revision": 53, "keys": 49, "hash": 7}
    assert doc[0]["drill"]["passed"] is True and doc[1]["drill"] is None
    assert doc[0]["spec"] == {"memberCount": 3, "etcdVersion": "3.5.16"} and doc[0]["size"] > 2000

    assert ctl(root, "list-backups", "--since=2026-01-02T00:00:00Z") == 0
    assert capsys.readouterr().out.split() == NAMES[1:]
    assert ctl(root, "list-backups", "--since=1h") == 0
    assert capsys.readouterr().out.split() == []


# -- backup-now --wait -------------------------------------------------------------------------


async def test_backup_now_waits_for_the_leader_and_prints_the_backup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_at(tmp_path / "store")
    await store.write_spec(SPEC)
    data = tmp_path / "data"
    data.write_bytes(b"snapshot")
    name = BackupName("2026-01-02T12:00:00Z-000001")

    async def leader() -> None:
        """Fails once (the status says so), then backs up and answers the request."""
        while not (requests := await store.list_backup_requests()):  # noqa: ASYNC110  # a leader polls too
            await trio.sleep(0.05)
        failure = Outcome("TakeBackup", int(time.time()) + 1, "no healthy member to back up")
        await store.write_status(status(backup_failure=failure).to_bytes())
        await trio.sleep(1.5)
        await store.write_backup(name, {"etcd.backup.gz": data}, BackupInfo(V, 1))
        await store.remove_backup_requests(requests)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(leader)
        await backup_now(store, True, timedelta(seconds=20))
    out, err = capsys.readouterr()
    assert out == f"{name}\n"
    assert "leader aaa: the backup failed: no healthy member to back up; it tries again next cycle" in err


async def test_backup_now_gives_up_after_its_timeout(tmp_path: Path) -> None:
    store = store_at(tmp_path / "store")
    await store.write_spec(SPEC)
    with pytest.raises(BackupWaitFailed, match="no backup within 1s; the request stays queued"):
        await backup_now(store, True, timedelta(seconds=1))
    assert len(await store.list_backup_requests()) == 1


# -- restore-backup --wait ---------------------------------------------------------------------

BACKUP = BackupName("2026-01-01T12:00:00Z-000001")
NEW = ClusterToken("new-cluster")


async def queue_restore(store: FileStore) -> CommandName:
    await store.write_spec(SPEC)
    await store.write_status(status().to_bytes())
    return await store.add_command(Command(None, time.time_ns(), RestoreBackup(SPEC, BACKUP)))


async def test_restore_wait_prints_each_phase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("etcdmgr.cli.ctl_follow.POLL", 0.05)
    store = store_at(tmp_path / "store")
    command = await queue_restore(store)
    key = command_file_key(command, CLAIM_FILE)

    async def leader() -> None:
        claim = RestoreClaim("aaa", NEW, "2026-01-01T12:00:00Z")
        await store.claim(key, claim.to_bytes())
        for done in (("aaa",), ("aaa", "ccc"), ("aaa", "bbb", "ccc")):
            await trio.sleep(0.3)
            await store.write_claim(key, replace(claim, restored=done).to_bytes())
        await trio.sleep(0.3)
        await store.remove_command(command)
        quarantined = tuple(replace(p, cluster_token=NEW, quarantined=True) for p in PEERS)
        for lifted in range(4):
            peers = tuple(replace(p, quarantined=i >= lifted) for i, p in enumerate(quarantined))
            await store.write_status(status(cluster_token=NEW, peers=peers).to_bytes())
            await trio.sleep(0.3)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(leader)
        await follow_restore(store, command, BACKUP, SPEC, timedelta(seconds=60))
    lines = [line.split("] ", 1)[-1] for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        f"verify: leader aaa checked backup {BACKUP} (checksums, gzip) and claimed the command; restoring it as cluster {NEW}",
        f"restore: node aaa restored backup {BACKUP} (1 of 3, quarantined)",
        f"restore: node ccc restored backup {BACKUP} (2 of 3, quarantined)",
        f"restore: node bbb restored backup {BACKUP} (3 of 3, quarantined)",
        "restore: the leader recorded the restored cluster and its spec; lifting the quarantine next",
        "quarantine lifted: aaa serves clients (1 of 3)",
        "quarantine lifted: bbb serves clients (2 of 3)",
        "quarantine lifted: ccc serves clients (3 of 3)",
        f"done: backup {BACKUP} restored; the cluster serves clients",
        lines[-1],
    ]
    assert lines[-1].startswith(f"restore of backup {BACKUP} took ")


async def test_restore_wait_ends_with_the_leaders_reason(tmp_path: Path) -> None:
    store = store_at(tmp_path / "store")
    command = await queue_restore(store)
    await store.mark_command_failed(command, "backup cannot be used: checksum mismatch", datetime.now(UTC))
    with pytest.raises(
        RestoreFailed,
        match=f"restore-backup command {command} failed .*: backup cannot be used: checksum mismatch",
    ):
        await follow_restore(store, command, BACKUP, SPEC, timedelta(seconds=10))


def test_restore_wait_needs_the_backup_to_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trio.run(store_at(tmp_path).write_spec, SPEC)
    assert ctl(tmp_path, "restore-backup", BACKUP, "--wait") == 1
    assert "no backup named" in capsys.readouterr().err
