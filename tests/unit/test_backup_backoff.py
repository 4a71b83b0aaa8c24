"""A failing backup backs off, is reported once per reason, and does not block changes forever;
a logical version change never quarantines and lifts in a loop."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from etcdmgr.backup.take import saves_v2
from etcdmgr.controller import actions as a
from etcdmgr.controller.act import Actor
from etcdmgr.controller.backoff import BackupAttempts
from etcdmgr.controller.plan import plan
from etcdmgr.controller.view import BackupHealth, ClusterView, MemberView
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model import ClusterSpec, EtcdCluster, EtcdNode, EtcdState, PeerInfo
from etcdmgr.peer.calls import ReconfigureArgs
from etcdmgr.store.errors import StoreError
from etcdmgr.store.retention import Retention

V = "3.4.23"
PEERS = ("peer-a", "peer-b", "peer-c")
STORE_REFUSES = (
    "cannot write backup 2024-05-01T10:00:00Z-000001 to file:///s: [Errno 1] Operation not permitted"
)


def node(pid: str) -> EtcdNode:
    n = PEERS.index(pid) + 1 if pid in PEERS else 4
    return EtcdNode(
        name=pid,
        peer_urls=(f"http://127.0.0.{n}:2380",),
        client_urls=(f"http://127.0.0.{n}:4001",),
        quarantined_client_urls=(f"http://127.0.0.{n}:8001",),
    )


def peer(pid: str, member: bool = True, version: str = V) -> PeerInfo:
    state = EtcdState(EtcdCluster("tok", (node(pid),)), etcd_version=version) if member else None
    return PeerInfo(pid, "test", node(pid), state, etcd_running=member, installed_versions=("3.3.25", V))


def member(pid: str) -> MemberView:
    n = node(pid)
    return MemberView(1000 + len(pid) + PEERS.index(pid), pid, n.peer_urls, n.client_urls, healthy=True)


def cluster(count: int = 3, *, spare: bool = False, version: str = V, **kw: Any) -> ClusterView:
    """Three healthy members on `version`, the spec asks for `count` members of V."""
    peers = {pid: peer(pid, version=version) for pid in PEERS}
    if spare:
        peers["peer-d"] = peer("peer-d", member=False)
    return ClusterView(
        spec=ClusterSpec(count, V),
        created=True,
        peers=peers,
        members=tuple(member(p) for p in PEERS),
        **kw,
    )


def failing(n: int, *, age: timedelta | None, retry_in: float = 0.0) -> BackupHealth:
    return BackupHealth(age=age, failures=n, error=STORE_REFUSES, retry_in=retry_in)


def test_retries_back_off_from_one_cycle_up_to_the_backup_interval() -> None:
    attempts = BackupAttempts(base=10.0, cap=900.0)
    delays = []
    for n in range(9):
        attempts.failed(f"attempt {n}: {STORE_REFUSES}", now=0.0)
        delays.append(attempts.delay())
    assert delays == [10, 20, 40, 80, 160, 320, 640, 900, 900]
    assert attempts.health(None, now=100.0).retry_in == 800.0
    assert attempts.succeeded() == 9
    assert attempts.health(None, now=100.0) == BackupHealth()


def test_a_failure_is_reported_once_per_reason_whatever_names_and_sizes_it_holds() -> None:
    attempts = BackupAttempts(base=10.0, cap=900.0)
    said = [
        attempts.failed(STORE_REFUSES, 0.0),
        attempts.failed(STORE_REFUSES.replace("000001", "000002").replace("10:00", "10:05"), 10.0),
        attempts.failed("backup from http://127.0.0.1:4001 took longer than 20s; gave up", 30.0),
        attempts.failed("backup from http://127.0.0.1:4001 took longer than 21s; gave up", 70.0),
        attempts.failed(STORE_REFUSES, 150.0),
    ]
    assert said == [True, False, True, False, True]
    attempts.succeeded()
    assert attempts.failed(STORE_REFUSES, 200.0), "a new episode is reported again"


def test_a_failed_backup_waits_for_its_retry_and_then_is_retried_even_if_not_due() -> None:
    backing_off = plan(cluster(backup_due=True, backups=failing(1, age=timedelta(hours=2), retry_in=30)))
    assert backing_off.action == a.Wait() and "converged" in backing_off.reason
    retry = plan(cluster(backups=failing(1, age=timedelta(minutes=5))))
    assert retry.action == a.TakeBackup() and "retrying a backup" in retry.reason


def test_a_change_backs_up_first_unless_a_backup_is_fresh() -> None:
    d = plan(cluster(4, spare=True))
    assert d.action == a.AddMember("peer-d", True, backup_first=True)
    fresh = plan(cluster(4, spare=True, backups=BackupHealth(age=timedelta(seconds=30))))
    assert fresh.action == a.AddMember("peer-d", True, backup_first=False)


def test_a_change_waits_for_the_first_retries_of_a_failing_backup() -> None:
    d = plan(cluster(4, spare=True, backups=failing(1, age=timedelta(hours=2), retry_in=20)))
    assert d.action == a.Wait()
    assert d.reason == (
        "3 of 4 members: adding peer peer-d as a learner: waits for a backup first; backups are failing "
        "(see the last 'backup failed' line), retrying"
    )
    d = plan(cluster(4, spare=True, backups=failing(2, age=timedelta(hours=2))))
    assert d.action == a.AddMember("peer-d", True, backup_first=True), "the retry comes with the change"


def test_after_three_failures_a_change_goes_ahead_on_a_backup_younger_than_a_day() -> None:
    d = plan(cluster(4, spare=True, backups=failing(3, age=timedelta(hours=23), retry_in=600)))
    assert d.action == a.AddMember("peer-d", True, backup_first=False)
    assert "without a new backup (the newest is less than 24h old)" in d.reason
    shrink = plan(cluster(2, backups=failing(5, age=timedelta(hours=1), retry_in=600)))
    assert isinstance(shrink.action, a.RemoveMember) and not shrink.action.backup_first


def test_without_a_backup_younger_than_a_day_a_change_waits_and_the_backup_is_retried() -> None:
    old = timedelta(hours=25)
    d = plan(cluster(4, spare=True, backups=failing(3, age=old, retry_in=600)))
    assert d.action == a.Wait()
    assert "waits for a backup (the newest is older than 24h)" in d.reason
    assert plan(cluster(4, spare=True, backups=failing(3, age=old))).action == a.TakeBackup()
    none = plan(cluster(4, spare=True, backups=failing(4, age=None, retry_in=5)))
    assert "there is none" in none.reason


def test_an_in_place_upgrade_is_gated_like_a_membership_change() -> None:
    d = plan(cluster(version="3.3.25", backups=failing(3, age=timedelta(hours=2), retry_in=60)))
    assert d.action == a.UpgradeMember("peer-a", V, backup_first=False)


def test_v2_is_saved_unless_the_daemons_environment_turns_it_off() -> None:
    assert saves_v2("3.4.23", {})
    assert saves_v2("3.4.23", {"ETCD_ENABLE_V2": "true"})
    assert not saves_v2("3.4.23", {"ETCD_ENABLE_V2": "false"})
    assert not saves_v2("3.5.30", {"ETCD_ENABLE_V2": "0"})
    assert not saves_v2("3.6.0", {})


# -- The logical version change (regression: it put the cluster in and out of quarantine at
# every cycle while the backup kept failing) -------------------------------------------------


class Api:
    def __init__(self) -> None:
        self.quarantine: list[tuple[str, bool | None]] = []

    async def reconfigure(self, pid: str, args: ReconfigureArgs) -> None:
        self.quarantine.append((pid, args.quarantined))


class Store:
    url = "file:///s"

    def __init__(self) -> None:
        self.commands: list[Any] = []

    async def add_command(self, cmd: Any) -> None:
        self.commands.append(cmd)

    async def list_backups(self) -> list[str]:
        return []

    async def remove_backup_requests(self, names: Any) -> None:
        pass


async def test_a_logical_change_whose_backup_fails_lifts_the_quarantine_and_then_waits(
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level("INFO")
    api, store = Api(), Store()
    attempts = BackupAttempts(base=10.0, cap=900.0)
    actor = Actor("peer-a", api, store, tmp_path, Retention(), None, attempts=attempts)  # type: ignore[arg-type]
    backups_work = False

    async def take(*args: Any) -> Any:
        if not backups_work:
            raise StoreError(STORE_REFUSES)
        return type("Result", (), {"name": "2024-05-01T10:00:00Z-000009"})()

    async def healthy_endpoint(client: Any) -> str:
        return client.endpoints[0]

    monkeypatch.setattr(actor.backups, "_take", take)
    monkeypatch.setattr("etcdmgr.controller.act.healthy_endpoint", healthy_endpoint)
    binaries = EtcdBinaries("3.5.30", Path("/x/etcd"), Path("/x/etcdctl"), None)
    on_35 = cluster(version="3.5.30")

    decisions = []
    for _ in range(20):  # 20 cycles, 10 s apart
        view = replace(on_35, backups=attempts.health(timedelta(minutes=5), trio.current_time()))
        decision = plan(view)
        decisions.append(type(decision.action).__name__)
        await actor.act(decision.action, view, binaries)
        await trio.sleep(10.0)

    everyone = sorted(PEERS)
    assert sorted(pid for pid, q in api.quarantine if q) == everyone, "quarantined once"
    assert sorted(pid for pid, q in api.quarantine if q is False) == everyone, "and lifted once"
    assert decisions[0] == "LogicalVersionChange"
    assert "LogicalVersionChange" not in decisions[1:]
    assert "TakeBackup" in decisions, "the backup is retried, with the cluster serving"
    assert caplog.text.count("backup failed: ") == 1
    assert "the move to etcd 3.4.23 did not happen: lifting the quarantine" in caplog.text
    last = plan(replace(on_35, backups=attempts.health(timedelta(minutes=5), trio.current_time())))
    assert "it waits, serving, until a backup succeeds" in last.reason or last.action == a.TakeBackup()

    backups_work = True
    await trio.sleep(attempts.health(None, trio.current_time()).retry_in)
    view = replace(on_35, backups=attempts.health(None, trio.current_time()))
    assert plan(view).action == a.TakeBackup()
    await actor.act(a.TakeBackup(), view, binaries)
    assert "backups work again, after" in caplog.text
    view = replace(on_35, backups=attempts.health(timedelta(seconds=1), trio.current_time()))
    assert plan(view).action == a.LogicalVersionChange(tuple(everyone), V), "once backups work, it goes ahead"
    await actor.act(plan(view).action, view, binaries)
    assert len(store.commands) == 1, "the restore on the new version is queued"
