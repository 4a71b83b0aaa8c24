"""The control loop on trio's mock clock: a leader that makes no progress steps down, a follower
warns once when no leader asserts itself, and a long action is not taken for a stall."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from etcdmgr.controller.loop import Controller
from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model import ClusterSpec, PeerEndpoint
from etcdmgr.model.values import EtcdVersion
from etcdmgr.peer.directory import PeerDirectory, Source
from etcdmgr.peer.election import Candidacy, Follower, Term
from etcdmgr.peer.progress import Progress
from etcdmgr.store.errors import StoreError
from etcdmgr.store.interface import CommandListing

STALL = 30.0
CYCLE = 5.0
A = (PeerEndpoint("127.0.0.1", 8000),)
B = (PeerEndpoint("127.0.0.2", 8000),)


class Store:
    """The backup store as the loop reads it: fine, gone, or hung."""

    poll_interval = 0.5  # as file://

    def __init__(self) -> None:
        self.gone = False
        self.hung = False

    async def _read(self) -> None:
        if self.hung:
            await trio.sleep_forever()
        if self.gone:
            raise StoreError("backup store file:///s: store folder /s has gone away")

    async def read_spec(self) -> None:
        await self._read()

    async def read_created(self) -> None:
        await self._read()

    async def list_commands(self) -> CommandListing:
        await self._read()
        return CommandListing([])


class CountingStore(Store):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read_spec(self) -> None:
        self.reads += 1
        await super().read_spec()


class Observer:
    def __init__(self, store: Store, view: ClusterView) -> None:
        self.store = store
        self._view = view

    async def assert_leadership(self, term: Term, healthy: list[str]) -> list[str]:
        return list(healthy)

    async def view(self, acked: list[str], binaries: EtcdBinaries | None) -> ClusterView:
        await self.store._read()
        return self._view


class Actor:
    def __init__(self, takes: float) -> None:
        self.takes = takes
        self.acted = 0

    async def act(self, action: Any, view: ClusterView, binaries: EtcdBinaries | None) -> bool:
        self.acted += 1
        await trio.sleep(self.takes)
        return True


class Loop(Controller):
    async def _etcdctl(self) -> EtcdBinaries | None:
        return None


class Caller:
    term: Term | None = None


class Status:
    """The `ctl status` writer has tests of its own: here it writes nothing."""

    @asynccontextmanager
    async def around(self, view: ClusterView, decision: Any) -> AsyncIterator[None]:
        yield


WAITING = ClusterView(spec=None, created=False, peers={}, members=None)
# A view whose plan is TakeBackup: the backup is due and a voting member is healthy.
BACKUP_DUE = ClusterView(
    spec=ClusterSpec(1, EtcdVersion("3.4.23")),
    created=True,
    peers={},
    members=(MemberView(1, "a", ("http://a:2380",), ("http://a:4001",), healthy=True),),
    backup_due=True,
)


def loop(me: str, store: Store, view: ClusterView = WAITING, act_takes: float = 0.0) -> Loop:
    progress = Progress(STALL, last_ok=trio.current_time())
    directory = PeerDirectory(me, (PeerEndpoint("127.0.0.9", 8000),), 4.0, progress=progress)
    return Loop(
        me=me,
        directory=directory,
        candidacy=Candidacy(me),
        caller=Caller(),  # type: ignore[arg-type]
        observer=Observer(store, view),  # type: ignore[arg-type]
        actor=Actor(act_takes),  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
        bin_dirs=(),
        cycle_interval=CYCLE,
        follower=Follower(),
        status=Status(),  # type: ignore[arg-type]
    )


async def peer_answers(directory: PeerDirectory, pid: str = "b") -> None:
    """Gossip, as far as this node sees it: peer `pid` (a or b) answers every ping (and never leads)."""
    endpoints = {"a": A, "b": B}[pid]
    directory.learn(pid, endpoints, Source.DISCOVERY)
    while True:
        directory.ping_ok(pid, endpoints)
        await trio.sleep(1.0)


async def test_a_leader_whose_store_is_gone_steps_down_and_leads_again_once_it_is_back(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    store = Store()
    a = loop("a", store)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer_answers, a.directory)
        nursery.start_soon(a.run)
        await trio.sleep(1.0)
        assert a.candidacy.term is not None, "the lowest id leads"

        store.gone = True
        await trio.sleep(STALL - 2)
        assert a.candidacy.term is not None, "a few failed cycles are no stall"
        await trio.sleep(2 * CYCLE)
        assert a.candidacy.term is None
        assert "a" in a.directory.unfit(), "its ping answers say so"
        assert caplog.text.count("control cycle failed: backup store file:///s") == 1, "once per failure"
        assert (
            "stepping down: this node is not fit to lead (its control loop has made no progress for"
            in caplog.text
        )
        assert "store folder /s has gone away); peer b leads next" in caplog.text

        store.gone = False
        await trio.sleep(CYCLE + 1)
        assert a.candidacy.term is None and "fit to lead in" in a.directory.unfit()["a"]
        await trio.sleep(STALL)
        assert a.candidacy.term is not None, "fit again after a stall timeout of progress"
        nursery.cancel_scope.cancel()


async def test_a_leader_hung_in_its_store_is_cut_off_at_the_stall_timeout(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    store = Store()
    a = loop("a", store)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer_answers, a.directory)
        nursery.start_soon(a.run)
        await trio.sleep(1.0)
        store.hung = True
        await trio.sleep(STALL + CYCLE + 1)
        assert a.candidacy.term is None
        assert "observing the cluster did not finish within the leader stall timeout (30s since" in caplog.text
        nursery.cancel_scope.cancel()


async def test_a_long_action_is_work_not_a_stall(autojump_clock: trio.testing.MockClock) -> None:
    store = Store()
    a = loop("a", store, BACKUP_DUE, act_takes=10 * STALL)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer_answers, a.directory)
        nursery.start_soon(a.run)
        await trio.sleep(5 * STALL)
        assert a.actor.acted == 1  # type: ignore[attr-defined]
        assert a.directory.unfit() == {}
        assert a.candidacy.term is not None
        nursery.cancel_scope.cancel()


async def test_a_follower_with_an_unreadable_store_is_unfit_before_it_is_ever_asked_to_lead(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    store = Store()
    store.gone = True
    b = loop("b", store)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer_answers, b.directory, "a")
        nursery.start_soon(b.run)
        await trio.sleep(STALL + CYCLE + 1)
        assert "b" in b.directory.unfit()
        assert caplog.text.count("cannot lead: the backup store check failed: backup store file:///s") == 1
        nursery.cancel_scope.cancel()


async def test_a_follower_warns_once_when_no_leader_asserts_itself(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    b = loop("b", Store())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer_answers, b.directory, "a")
        nursery.start_soon(b.run)
        await trio.sleep(STALL - CYCLE)
        assert "no leader has asserted itself" not in caplog.text
        await trio.sleep(10 * STALL)
        assert caplog.text.count("no leader has asserted itself here for 30s") == 1
        assert "Peer a should lead: see its log" in caplog.text

        b.follower.accept("a", "token-1", now=trio.current_time())
        await trio.sleep(CYCLE + 1)
        assert "leader a asserts itself again" in caplog.text
        nursery.cancel_scope.cancel()


async def test_a_follower_reads_its_store_every_third_of_the_stall_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = CountingStore()
    b = loop("b", store)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer_answers, b.directory, "a")
        nursery.start_soon(b.run)
        await trio.sleep(10 * STALL + 1)
        # Each read is a paid request on an object store: 31 looks, not the 61 of one per cycle.
        assert store.reads == 31
        assert "b" not in b.directory.unfit(), "still fit to lead"
        nursery.cancel_scope.cancel()
