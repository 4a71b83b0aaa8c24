"""Restore drills without etcd: who is asked (never the leader while another node can), the
DoDrill call and its bounds on the node, and how the leader follows the record in the store."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from etcdmgr.controller.drills import Drills, drill_candidates
from etcdmgr.daemon.handlers import make_handler
from etcdmgr.model import EtcdCluster, EtcdNode, EtcdState, InvalidData, PeerInfo
from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.checks import DrillRecord
from etcdmgr.model.ids import BackupName, ClusterToken, PeerId
from etcdmgr.model.values import EtcdVersion
from etcdmgr.node.drill import DrillRunner
from etcdmgr.peer import methods
from etcdmgr.peer.calls import DoDrillAnswer, DoDrillArgs
from etcdmgr.store import FileStore
from etcdmgr.store.layout import DRILL_FILE

from .test_handlers import make_node

BACKUP = BackupName("2026-01-02T12:00:00Z-000001")
OLDER = BackupName("2026-01-02T11:00:00Z-000001")
STATE = EtcdState(EtcdCluster(ClusterToken("tok"), ()), EtcdVersion("3.5.16"))


def info(pid: str, *, member: bool) -> PeerInfo:
    return PeerInfo(PeerId(pid), "test", EtcdNode(PeerId(pid)), STATE if member else None)


def test_idle_nodes_first_then_followers_and_the_leader_only_alone() -> None:
    peers = {p: info(p, member=p in ("a", "c", "e")) for p in ("a", "b", "c", "d", "e")}
    assert drill_candidates(peers, "a") == ["b", "d", "c", "e"]
    assert drill_candidates({"a": info("a", member=True)}, "a") == ["a"]


def test_the_call_round_trips_and_refuses_a_bad_name() -> None:
    args = DoDrillArgs(backup=BACKUP)
    assert DoDrillArgs.from_wire(args.to_wire()) == args
    answer = DoDrillAnswer(started=False, reason="busy")
    assert DoDrillAnswer.from_wire(answer.to_wire()) == answer
    with pytest.raises(InvalidData, match=r"^DoDrill: field 'backup'"):
        DoDrillArgs.from_wire({"backup": "../../etc"})
    assert methods.DO_DRILL not in methods.MUTATING, "a drill touches only scratch: no token needed"


class Api:
    """A leader's node calls: ``refuse`` maps peers to their refusal."""

    def __init__(self, refuse: dict[str, str] | None = None) -> None:
        self.refuse = refuse or {}
        self.asked: list[tuple[str, BackupName]] = []

    async def do_drill(self, pid: str, args: DoDrillArgs) -> DoDrillAnswer:
        self.asked.append((pid, args.backup))
        if pid in self.refuse:
            return DoDrillAnswer(started=False, reason=self.refuse[pid])
        return DoDrillAnswer(started=True)


async def store_with_backups(tmp_path: Path, *names: BackupName) -> FileStore:
    store = FileStore(tmp_path / "store", f"file://{tmp_path}/store")
    data = tmp_path / "data"
    data.write_bytes(b"x")
    for name in names:
        await store.write_backup(name, {"etcd.backup.gz": data}, BackupInfo(EtcdVersion("3.5.16"), 1))
    return store


def record(passed: bool, when: int = 1_767_355_200) -> DrillRecord:
    return DrillRecord(passed, "because", PeerId("b"), when, 2.5)


async def test_the_leader_asks_the_first_node_that_takes_it_and_waits_out_the_interval(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    store = await store_with_backups(tmp_path, BACKUP)
    api = Api(refuse={"b": "drilling backup x"})
    drills = Drills(api, store, "a", interval=3600)  # type: ignore[arg-type]
    peers = {p: info(p, member=p == "a") for p in ("a", "b", "c")}
    await drills.after_backup(peers, BACKUP)
    assert api.asked == [("b", BACKUP), ("c", BACKUP)]
    mock_clock.jump(3599)
    await drills.after_backup(peers, OLDER)
    assert len(api.asked) == 2, "at most one drill an interval"
    mock_clock.jump(2)
    await drills.after_backup(peers, OLDER)
    assert api.asked[-2:] == [("b", OLDER), ("c", OLDER)]


async def test_no_interval_means_no_drills(tmp_path: Path) -> None:
    api = Api()
    drills = Drills(api, await store_with_backups(tmp_path), "a", interval=None)  # type: ignore[arg-type]
    await drills.after_backup({"a": info("a", member=True)}, BACKUP)
    assert api.asked == []


async def test_the_leader_follows_the_record_and_logs_a_failure_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="etcdmgr.controller.drills")
    store = await store_with_backups(tmp_path, BACKUP)
    drills = Drills(Api(), store, "a", interval=60)  # type: ignore[arg-type]
    await drills.after_backup({"a": info("a", member=True)}, BACKUP)
    status = await drills.status()
    assert status is not None and status.backup == BACKUP and status.record is None  # still running
    await store.write_backup_extra(BACKUP, DRILL_FILE, record(False).to_bytes())
    for _ in range(2):
        status = await drills.status()
        assert status is not None and status.record == record(False)
    failures = [r.getMessage() for r in caplog.records]
    assert failures == [f"restore drill of backup {BACKUP} failed on b: because"]


async def test_a_new_leader_takes_the_last_drill_from_the_store(tmp_path: Path) -> None:
    store = await store_with_backups(tmp_path, OLDER, BACKUP)
    await store.write_backup_extra(OLDER, DRILL_FILE, record(True).to_bytes())
    drills = Drills(Api(), store, "a", interval=60)  # type: ignore[arg-type]
    status = await drills.status()
    assert status is not None and status.backup == OLDER and status.record == record(True)


async def test_a_node_runs_one_drill_at_a_time_and_spaces_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("etcdmgr.node.drill.DRILL_SPACING", 1.0)
    node = make_node(tmp_path)
    store = await store_with_backups(tmp_path, BACKUP)
    results, received = trio.open_memory_channel[tuple[BackupName, DrillRecord]](4)
    runner = DrillRunner(
        PeerId("m-node"), store, tmp_path / "scratch", (), on_result=lambda n, r: results.send_nowait((n, r))
    )
    node.handler = make_handler("test", node.directory, node.follower, node.service, runner)
    call = DoDrillArgs(backup=BACKUP).to_wire()

    async def recorded() -> DrillRecord:
        """The record the hook gets, once it is in the store too."""
        with trio.fail_after(10):
            name, found = await received.receive()
        assert name == BACKUP
        assert DrillRecord.from_bytes((store.root / BACKUP / DRILL_FILE).read_bytes()) == found
        return found

    assert (await node.call(methods.DO_DRILL, call))["started"] is False, "not before it runs"
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        assert await node.call(methods.DO_DRILL, call) == {"started": True, "reason": ""}
        assert (await node.call(methods.DO_DRILL, call))["reason"] == f"drilling backup {BACKUP}"
        # No etcd is installed for it (bin_dirs=()): the drill fails, and says so.
        first = await recorded()
        assert not first.passed and first.node == "m-node" and "etcd" in first.reason
        soon = await node.call(methods.DO_DRILL, call)
        assert soon["started"] is False and "try in" in soon["reason"]
        await trio.sleep(1.0)
        assert (await node.call(methods.DO_DRILL, call))["started"] is True
        await recorded()
        nursery.cancel_scope.cancel()
