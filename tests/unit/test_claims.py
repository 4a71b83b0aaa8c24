"""One cluster: creating a cluster and carrying out a restore are claimed in the store with a
create-if-absent write, so of two leaders racing (a partition) exactly one goes ahead."""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from etcdmgr.controller import actions as a
from etcdmgr.controller.act import Actor
from etcdmgr.controller.claims import RESTORE_CLAIM_TTL, Claims, RestoreClaim
from etcdmgr.controller.errors import ActionFailed
from etcdmgr.controller.view import ClusterView
from etcdmgr.model import ClusterSpec, EtcdNode, PeerInfo
from etcdmgr.model.command import Command, RestoreBackup
from etcdmgr.model.ids import PeerId
from etcdmgr.peer.calls import JoinClusterArgs, JoinPhase
from etcdmgr.store import FileStore, StoreError
from etcdmgr.store.retention import Retention
from etcdmgr.util import atomic
from etcdmgr.util.atomic import create_exclusive

ORIGINAL_MARKER = (
    Path(__file__).parent.parent / "fixtures" / "original_store" / "control" / "etcd-cluster-created"
)
SPEC = ClusterSpec(member_count=3, etcd_version="3.5.30")


@pytest.fixture
async def store(tmp_path: Path) -> FileStore:
    root = tmp_path / "store"
    s = FileStore(root, f"file://{root}")
    await s.write_spec(SPEC)  # as `ctl configure-cluster` leaves it
    return s


# -- the exclusive create ------------------------------------------------------------------------


def test_racing_threads_one_wins(tmp_path: Path) -> None:
    dest = tmp_path / "claim"
    barrier = threading.Barrier(16)
    results: dict[int, bool] = {}

    def contender(i: int) -> None:
        barrier.wait()
        results[i] = create_exclusive(dest, f"contender {i}".encode(), 0o600)

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, won in results.items() if won]
    assert len(winners) == 1
    assert dest.read_bytes() == f"contender {winners[0]}".encode(), "the winner's body, complete"
    assert os.listdir(tmp_path) == ["claim"], "no temp file is left behind"


def _claim_in_process(dest: str, i: int, start: Any, out: Any) -> None:
    """One daemon's claim, in a process of its own (start: an Event, out: a Queue)."""
    start.wait()
    out.put((i, create_exclusive(Path(dest), f"process {i}".encode(), 0o600)))


def test_racing_processes_one_wins(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_claim_in_process, args=(str(tmp_path / "claim"), i, start, out)) for i in range(6)
    ]
    for p in procs:
        p.start()
    start.set()
    results = dict(out.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(30)
    winners = [i for i, won in results.items() if won]
    assert len(winners) == 1
    assert (tmp_path / "claim").read_bytes() == f"process {winners[0]}".encode()


def test_without_hard_links_the_create_is_still_exclusive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(atomic.os, "link", no_links)
    assert create_exclusive(tmp_path / "claim", b"first", 0o600) is True
    assert create_exclusive(tmp_path / "claim", b"second", 0o600) is False
    assert (tmp_path / "claim").read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["claim"]


# -- claims through the store ---------------------------------------------------------------------


async def test_the_created_marker_is_claimed_once_in_the_originals_format(store: FileStore) -> None:
    assert await store.create_created_marker(1547479605123456789) is True
    marker = store.root / "control" / "etcd-cluster-created"
    assert marker.read_bytes() == ORIGINAL_MARKER.read_bytes()
    assert await store.create_created_marker(2) is False, "never overwritten blindly"
    assert await store.read_created() == 1547479605123456789


async def test_concurrent_store_claims_one_wins(store: FileStore) -> None:
    results: list[bool] = []

    async def contender(i: int) -> None:
        results.append(await store.create_created_marker(i + 1))

    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(contender, i)
    assert sorted(results) == [False] * 9 + [True]


async def test_a_claim_needs_its_command_folder(store: FileStore) -> None:
    key = "control/2024-06-15T12:00:00Z-000000/etcdmgr-claim.json"
    with pytest.raises(StoreError, match="cannot create"):
        await store.claim(key, b"{}")
    assert not (store.root / "control" / "2024-06-15T12:00:00Z-000000").exists()
    with pytest.raises(StoreError, match="invalid store key"):
        await store.claim("control/../../escape", b"{}")


# -- the restore claim ------------------------------------------------------------------------------


async def queue_restore(store: FileStore) -> str:
    return await store.add_command(
        Command("", 1_000_000_000, RestoreBackup(SPEC, "2024-06-15T12:00:00Z-000001"))
    )


async def test_of_two_leaders_one_carries_out_a_restore(store: FileStore) -> None:
    name = await queue_restore(store)
    results: dict[str, bool] = {}

    async def leader(me: str) -> None:
        results[me] = await Claims(store, me).restore(name, f"token-of-{me}", followers=())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(leader, "aaa")
        nursery.start_soon(leader, "bbb")
    assert sorted(results.values()) == [False, True]
    winner = next(me for me, won in results.items() if won)
    held = RestoreClaim.from_bytes((store.root / "control" / name / "etcdmgr-claim.json").read_bytes())
    assert held is not None and (held.leader, held.cluster_token) == (winner, f"token-of-{winner}")


async def test_the_loser_waits_and_says_so_once(store: FileStore, caplog: pytest.LogCaptureFixture) -> None:
    name = await queue_restore(store)
    assert await Claims(store, "aaa").restore(name, "t1", followers=()) is True
    loser = Claims(store, "bbb")
    with caplog.at_level(logging.INFO, logger="etcdmgr.controller.claims"):
        assert await loser.restore(name, "t2", followers=("ccc",)) is False
        assert await loser.restore(name, "t3", followers=("ccc",)) is False
    [record] = caplog.records
    assert f"restore-backup command {name} is claimed by leader aaa (cluster t1" in record.getMessage()
    assert f"ctl delete-command {name}" in record.getMessage()


@pytest.mark.parametrize(
    ("holder", "why"),
    [
        pytest.param("bbb", "this node's own earlier attempt (crashed or failed)", id="own claim"),
        pytest.param("aaa", "its holder follows this leader now, so it no longer leads", id="holder follows"),
    ],
)
async def test_a_stale_claim_is_taken_over(store: FileStore, holder: str, why: str) -> None:
    name = await queue_restore(store)
    assert await Claims(store, holder).restore(name, "old", followers=()) is True
    assert await Claims(store, "bbb").restore(name, "new", followers=("aaa",)) is True, why
    held = RestoreClaim.from_bytes((store.root / "control" / name / "etcdmgr-claim.json").read_bytes())
    assert held is not None and (held.leader, held.cluster_token) == ("bbb", "new")


async def test_a_claim_left_unchanged_for_the_ttl_is_taken_over(
    store: FileStore, mock_clock: trio.testing.MockClock
) -> None:
    # Its holder died for good mid-restore: the cluster must not stay quarantined forever.
    name = await queue_restore(store)
    assert await Claims(store, "aaa").restore(name, "old", followers=()) is True
    waiting = Claims(store, "bbb")
    assert await waiting.restore(name, "new", followers=()) is False
    mock_clock.jump(RESTORE_CLAIM_TTL - 1)
    assert await waiting.restore(name, "new", followers=()) is False
    mock_clock.jump(1)
    assert await waiting.restore(name, "new", followers=()) is True
    held = RestoreClaim.from_bytes((store.root / "control" / name / "etcdmgr-claim.json").read_bytes())
    assert held is not None and held.leader == "bbb"


async def test_an_unreadable_claim_is_taken_over(store: FileStore) -> None:
    name = await queue_restore(store)
    (store.root / "control" / name / "etcdmgr-claim.json").write_bytes(b"\x00garbage")
    assert await Claims(store, "bbb").restore(name, "new", followers=()) is True


async def test_a_failed_restore_is_marked_beside_its_command(store: FileStore) -> None:
    name = await queue_restore(store)
    await Claims(store, "aaa").mark_failed(name, "backup checksum mismatch")
    listing = await store.list_commands()
    assert listing.runnable == []
    assert listing.failed[name].reason == "backup checksum mismatch"


async def test_marking_fails_softly_when_the_store_cannot_take_it(
    store: FileStore, caplog: pytest.LogCaptureFixture
) -> None:
    await Claims(store, "aaa").mark_failed("2024-06-15T12:00:00Z-000000", "x")
    assert "cannot mark command 2024-06-15T12:00:00Z-000000 failed" in caplog.text


# -- the create claim in the controller -----------------------------------------------------------


def _node(pid: str) -> EtcdNode:
    return EtcdNode(name=pid, peer_urls=(f"http://{pid}:2380",), client_urls=(f"http://{pid}:4001",))


class RacingApi:
    """Node calls of a leader that loses the race: another leader writes the created marker
    while this one prepares its peers."""

    def __init__(self, rival: FileStore) -> None:
        self.rival = rival
        self.calls: list[tuple[str, str]] = []

    async def join_cluster(self, pid: str, call: JoinClusterArgs) -> None:
        self.calls.append((pid, call.phase.value))
        if call.phase is JoinPhase.PREPARE:
            await self.rival.create_created_marker(42)


async def test_the_leader_that_loses_the_create_race_starts_nothing(store: FileStore, tmp_path: Path) -> None:
    api = RacingApi(FileStore(store.root, store.url))
    actor = Actor("aaa", api, store, tmp_path / "scratch", Retention(), None)  # type: ignore[arg-type]
    peers = {PeerId(pid): PeerInfo(PeerId(pid), "test", _node(pid), None) for pid in ("aaa", "bbb")}
    view = ClusterView(spec=SPEC, created=False, peers=peers, members=None)
    with pytest.raises(ActionFailed, match="another leader created the cluster first"):
        await actor.act(a.CreateCluster(("aaa", "bbb"), SPEC.etcd_version), view, None)
    phases = {phase for _, phase in api.calls}
    assert JoinPhase.INITIAL_CLUSTER.value not in phases, "no member started"
    assert JoinPhase.CANCEL_PREPARE.value in phases, "the prepared peers are released"
    assert await store.read_created() == 42, "the winner's marker stays"
