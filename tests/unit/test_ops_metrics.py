"""Metrics: no-ops (and no prometheus_client) while off; with the recorder, each event shows on a scrape."""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from etcdmgr import __version__
from etcdmgr.ops import metrics
from etcdmgr.ops.metrics import MemberCounts
from etcdmgr.ops.prometheus import NodeNow, PrometheusRecorder


def scrape(recorder: PrometheusRecorder) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of one scrape, parsed as Prometheus would."""
    body, content_type = recorder.exposition("")
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


LEADER = NodeNow(leading=True, healthy_peers=2, unhealthy_peers=1, quarantined=False)


@dataclass
class Rig:
    """A recorder installed for one test, with the node's state and clocks the test sets."""

    node: NodeNow = LEADER
    wall: float = 1_800_000_000.0
    mono: float = 100.0

    def __post_init__(self) -> None:
        self.recorder = PrometheusRecorder(
            lambda: self.node, timedelta(minutes=15), clock=lambda: self.wall, monotonic=lambda: self.mono
        )

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return scrape(self.recorder)


@pytest.fixture
def rig() -> Iterator[Rig]:
    rig = Rig()
    metrics.install(rig.recorder)
    yield rig
    metrics.install(metrics.Recorder())


def test_without_the_port_the_daemon_never_imports_prometheus_client() -> None:
    code = (
        "import sys, etcdmgr.daemon.run, etcdmgr.cli.daemon_cmd; "
        "from etcdmgr.ops import metrics; metrics.decision('Wait'); metrics.etcd_restarted(); "
        "sys.exit('prometheus_client' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_events_and_state_show_on_a_scrape(rig: Rig) -> None:
    metrics.cycle_started()
    metrics.cluster_seen(MemberCounts(healthy=2, unhealthy=1, learners=1), desired=3)
    metrics.newest_backup(timedelta(seconds=30))
    metrics.decision("AddMember")
    metrics.decision("Wait")
    metrics.decision("Wait")
    metrics.etcd_restarted()
    metrics.restore_finished(ok=True)
    rig.recorder.set_cert_expiry({"etcd-manager-ca": 2_000_000_000.0})
    rig.mono += 7
    got = rig.scrape()
    assert got[("etcdmgr_control_cycles_total", ())] == 1
    assert got[("etcdmgr_control_cycle_running_seconds", ())] == 7
    assert got[("etcdmgr_decisions_total", (("action", "Wait"),))] == 2
    assert got[("etcdmgr_decisions_total", (("action", "AddMember"),))] == 1
    assert got[("etcdmgr_etcd_members", (("state", "healthy"),))] == 2
    assert got[("etcdmgr_etcd_members", (("state", "unhealthy"),))] == 1
    assert got[("etcdmgr_etcd_members", (("state", "learner"),))] == 1
    assert got[("etcdmgr_etcd_member_count_desired", ())] == 3
    assert got[("etcdmgr_backup_last_success_timestamp_seconds", ())] == 1_800_000_000 - 30
    assert got[("etcdmgr_etcd_restarts_total", ())] == 1
    assert got[("etcdmgr_restores_total", (("result", "success"),))] == 1
    assert got[("etcdmgr_restores_total", (("result", "failure"),))] == 0
    assert got[("etcdmgr_backups_total", (("result", "failure"),))] == 0
    assert got[("etcdmgr_cert_expiry_timestamp_seconds", (("cert", "etcd-manager-ca"),))] == 2e9
    assert got[("etcdmgr_is_leader", ())] == 1
    assert got[("etcdmgr_peers", (("state", "healthy"),))] == 2
    assert got[("etcdmgr_peers", (("state", "unhealthy"),))] == 1
    assert got[("etcdmgr_quarantined", ())] == 0
    assert got[("etcdmgr_backup_interval_seconds", ())] == 900
    build = (("python", platform.python_version()), ("version", __version__))
    assert got[("etcdmgr_build_info", build)] == 1
    assert not any(name.endswith("_created") for name, _ in got), "no _created series"
    metrics.cycle_ended()
    assert rig.scrape()[("etcdmgr_control_cycle_running_seconds", ())] == 0


def test_a_follower_shows_no_view_of_the_cluster(rig: Rig) -> None:
    metrics.cluster_seen(MemberCounts(3, 0, 0), desired=3)
    metrics.newest_backup(timedelta(seconds=5))
    rig.node = NodeNow(leading=False, healthy_peers=2, unhealthy_peers=0, quarantined=True)
    got = rig.scrape()
    assert got[("etcdmgr_is_leader", ())] == 0
    assert got[("etcdmgr_quarantined", ())] == 1
    names = {name for name, _ in got}
    for leader_only in (
        "etcdmgr_etcd_members",
        "etcdmgr_etcd_member_count_desired",
        "etcdmgr_backup_last_success_timestamp_seconds",
        "etcdmgr_control_cycle_running_seconds",
    ):
        assert leader_only not in names


@dataclass
class Taken:
    seconds: float
    size: int


class Backups:
    @metrics.counts_backup
    async def take(self, size: int, *, fail: bool = False, hang: bool = False) -> Taken:
        if fail:
            raise OSError("disk full")
        if hang:
            await trio.sleep_forever()
        return Taken(seconds=1.5, size=size)


async def test_a_backup_counts_as_a_success_with_its_time_and_size_or_as_a_failure(rig: Rig) -> None:
    assert (await Backups().take(4096)).size == 4096
    with pytest.raises(OSError):
        await Backups().take(1, fail=True)
    with trio.move_on_after(0.01):  # cancelled (a daemon stopping): neither
        await Backups().take(1, hang=True)
    got = rig.scrape()
    assert got[("etcdmgr_backups_total", (("result", "success"),))] == 1
    assert got[("etcdmgr_backups_total", (("result", "failure"),))] == 1
    assert got[("etcdmgr_backup_size_bytes", ())] == 4096
    assert got[("etcdmgr_backup_duration_seconds_count", ())] == 1
    assert got[("etcdmgr_backup_duration_seconds_sum", ())] == 1.5
    assert got[("etcdmgr_backup_duration_seconds_bucket", (("le", "2.0"),))] == 1
    assert got[("etcdmgr_backup_last_success_timestamp_seconds", ())] == 1_800_000_000


def test_openmetrics_when_the_scraper_asks_for_it(rig: Rig) -> None:
    body, content_type = rig.recorder.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
