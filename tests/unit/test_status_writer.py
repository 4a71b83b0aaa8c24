"""The status the leader writes for `ctl status`: built from one cycle's view alone, and written
to the store when it changes or its refresh is due (each cycle on file://, once a minute on a
store that bills requests), around each action with its outcome."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import trio

from etcdmgr.controller.actions import Decision, LiftQuarantine, TakeBackup, Wait
from etcdmgr.controller.drills import Drills
from etcdmgr.controller.errors import ActionFailed
from etcdmgr.controller.status import StatusWriter, build_status, peer_rows
from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.model import ClusterSpec, EtcdCluster, EtcdNode, EtcdState, PeerEndpoint, PeerInfo
from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.ids import BackupName, ClusterToken, PeerId
from etcdmgr.model.status import BackupStatus, ClusterStatus, PeerStatus
from etcdmgr.model.values import EtcdVersion
from etcdmgr.store import FileStore

V = EtcdVersion("3.5.16")
TOKEN = ClusterToken("tok")
SPEC = ClusterSpec(3, V)


def node(pid: str) -> EtcdNode:
    return EtcdNode(PeerId(pid), peer_urls=(f"http://{pid}:2380",), client_urls=(f"http://{pid}:4001",))


def peer(pid: str, *, member: bool = True, quarantined: bool = False, problem: str | None = None) -> PeerInfo:
    state = EtcdState(EtcdCluster(TOKEN, ()), V, quarantined=quarantined) if member else None
    return PeerInfo(PeerId(pid), "test", node(pid), state, etcd_running=member, state_problem=problem)


def member(mid: int, name: str, *, healthy: bool = True, learner: bool = False, urls: str = "") -> MemberView:
    return MemberView(mid, name, (urls or f"http://{name}:2380",), (), healthy, learner)


ADDRESSES = {PeerId(p): (PeerEndpoint(f"127.0.0.{i}", 8000),) for i, p in enumerate(("a", "b", "c", "d"), 1)}
VIEW = ClusterView(
    spec=SPEC,
    created=True,
    peers={
        "a": peer("a"),
        "b": peer("b", quarantined=True),
        "c": peer("c", member=False, problem="no state"),
    },
    members=(
        member(1, "a"),
        member(2, "", learner=True, urls="http://b:2380"),  # b's, not started under its name yet
        member(3, "gone", healthy=False),
    ),
)


def test_one_row_per_known_peer_then_per_member_without_a_daemon() -> None:
    assert peer_rows(VIEW, ADDRESSES) == (
        PeerStatus(PeerId("a"), "127.0.0.1:8000", True, "voting", True, V, False, TOKEN),
        PeerStatus(PeerId("b"), "127.0.0.2:8000", True, "learner", True, V, True, TOKEN),
        PeerStatus(PeerId("c"), "127.0.0.3:8000", True, problem="no state"),
        PeerStatus(PeerId("d"), "127.0.0.4:8000", False),  # known, but its daemon did not answer
        PeerStatus(
            PeerId("gone"), member="voting", member_healthy=False, problem="no daemon answers for this member"
        ),
    )


def test_the_status_says_who_leads_what_was_decided_and_the_cluster_token() -> None:
    status = build_status(
        now=100,
        me=PeerId("a"),
        view=VIEW,
        decision=Decision(LiftQuarantine(("b",)), "quorum is back"),
        acting=True,
        addresses=ADDRESSES,
        stale_after=30.0,
    )
    assert (status.leader, status.action, status.reason, status.acting) == (
        "a",
        "LiftQuarantine",
        "quorum is back",
        True,
    )
    assert status.cluster_token == TOKEN and status.spec == SPEC and status.time == 100
    assert ClusterStatus.from_bytes(status.to_bytes()) == status


class CountingStore(FileStore):
    """A file store that counts status writes; ``billed`` makes it act as an object store."""

    def __init__(self, root: Path, billed: bool) -> None:
        super().__init__(root, f"file://{root}")
        self.billed = billed
        self.writes: list[ClusterStatus] = []

    @property
    def cheap_writes(self) -> bool:
        return not self.billed

    async def write_status(self, body: bytes) -> None:
        await super().write_status(body)
        self.writes.append(ClusterStatus.from_bytes(body))


def writer(store: CountingStore) -> StatusWriter:
    drills = Drills(None, store, "a", interval=None)  # type: ignore[arg-type]
    return StatusWriter(store, PeerId("a"), lambda: ADDRESSES, drills, cycle_interval=10.0)


async def cycle(w: StatusWriter, decision: Decision, fail: str = "") -> None:
    async with w.around(VIEW, decision):
        if fail:
            raise ActionFailed(fail)


WAIT = Decision(Wait(), "cluster is as specified")


@pytest.mark.parametrize(("billed", "refresh", "stale_after"), [(False, 10.0, 60.0), (True, 60.0, 180.0)])
async def test_written_when_changed_or_due(
    tmp_path: Path, mock_clock: trio.testing.MockClock, billed: bool, refresh: float, stale_after: float
) -> None:
    store = CountingStore(tmp_path / "store", billed)
    w = writer(store)
    assert (w.refresh, w.stale_after) == (refresh, stale_after), "three refreshes, and at least a minute"
    await cycle(w, WAIT)
    await cycle(w, WAIT)
    assert len(store.writes) == 1, "an unchanged status is not written again before its refresh"
    await cycle(w, Decision(Wait(), "waiting for quorum"))
    assert len(store.writes) == 2, "a changed one is written at once"
    mock_clock.jump(refresh - 1)
    await cycle(w, Decision(Wait(), "waiting for quorum"))
    assert len(store.writes) == 2
    mock_clock.jump(1)
    await cycle(w, Decision(Wait(), "waiting for quorum"))
    assert len(store.writes) == 3, "refreshed, so that readers see a leader at work"


async def test_an_action_is_written_as_started_and_as_ended(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store", billed=True)
    w = writer(store)
    await cycle(w, Decision(LiftQuarantine(("b",)), "quorum is back"))
    started, ended = store.writes
    assert started.acting and started.last_action is None
    assert not ended.acting and ended.last_action is not None
    assert ended.last_action.action == "LiftQuarantine" and ended.last_action.error == ""


async def test_a_failed_backup_is_shown_until_one_succeeds(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store", billed=False)
    w = writer(store)
    take = Decision(TakeBackup(), "backup interval elapsed")
    with pytest.raises(ActionFailed):
        await cycle(w, take, fail="no healthy member to back up")
    failed = store.writes[-1]
    assert failed.backup_failure is not None and failed.backup_failure.error == "no healthy member to back up"
    assert failed.backup is None

    data = tmp_path / "data"
    data.write_bytes(b"12345")
    name = BackupName("2026-01-02T12:00:00Z-000001")
    await store.write_backup(name, {"etcd.backup.gz": data}, BackupInfo(V, 1_767_355_200))
    await cycle(w, take)
    done = store.writes[-1]
    assert done.backup_failure is None
    assert done.backup is not None and done.backup == BackupStatus(
        name,
        1_767_355_200,
        5
        + (store.root / name / "SHA256SUMS").stat().st_size
        + (store.root / name / "_etcd_backup.meta").stat().st_size,
        V,
    )


async def test_a_store_that_fails_never_fails_the_cycle(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store", billed=False)
    (tmp_path / "store").mkdir()
    w = writer(store)
    await cycle(w, WAIT)
    shutil.rmtree(tmp_path / "store")  # the store has gone away (a lost mount)
    await cycle(w, Decision(Wait(), "something else"))
    assert len(store.writes) == 1
