"""The metrics recorder behind --etcd-manager-metrics-port: prometheus_client's registry and text format.

Imported only when the port is set. Events (ops/metrics.py) go to counters and a histogram; what
is true now (leading, peers, quarantine, certificates) is read when scraped, so it is never stale.
What the leader saw of the cluster is shown only while this node leads: a follower's last view
would be old, and a sum over the daemons would count it twice.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import disable_created_metrics
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from etcdmgr import __version__
from etcdmgr.ops.metrics import MemberCounts, Recorder

# A backup of a small cluster takes about a second; of a few GB, minutes.
BACKUP_SECONDS_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)


@dataclass(frozen=True)
class NodeNow:
    """This daemon as it is at the moment of a scrape."""

    leading: bool
    healthy_peers: int  # other peers, by this node's own pings
    unhealthy_peers: int
    quarantined: bool  # its etcd member serves on the quarantine URLs only


@dataclass
class LeaderView:
    """The last cycle's view of the cluster (kept by the leader)."""

    members: MemberCounts | None = None
    desired: int | None = None
    backup_success: float | None = None  # unix time of the newest backup in the store
    cycle_started: float | None = None  # monotonic, while a cycle runs


class PrometheusRecorder(Recorder):
    def __init__(
        self,
        node_now: Callable[[], NodeNow],
        backup_interval: timedelta,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call] # *_created series double the output and nobody reads them here
        self.registry = CollectorRegistry()
        self._clock = clock
        self._monotonic = monotonic
        self._node_now = node_now
        self._backup_interval = backup_interval.total_seconds()
        self.view = LeaderView()
        r = self.registry
        self._cycles = Counter("etcdmgr_control_cycles", "Control cycles begun while leading.", registry=r)
        self._decisions = Counter(
            "etcdmgr_decisions",
            "Planner decisions while leading, by action (Wait: none).",
            ["action"],
            registry=r,
        )
        self._backups = Counter(
            "etcdmgr_backups", "Backups this node took, by result.", ["result"], registry=r
        )
        self._restores = Counter(
            "etcdmgr_restores", "restore-backup commands carried out, by result.", ["result"], registry=r
        )
        for result in ("success", "failure"):
            self._backups.labels(result)
            self._restores.labels(result)
        self._etcd_restarts = Counter(
            "etcdmgr_etcd_restarts", "Times etcd exited unasked and was restarted.", registry=r
        )
        self._backup_seconds = Histogram(
            "etcdmgr_backup_duration_seconds",
            "Time to take and store one backup.",
            buckets=BACKUP_SECONDS_BUCKETS,
            registry=r,
        )
        self._backup_size: float | None = None
        self._cert_expiry: dict[str, float] = {}
        r.register(self)  # collect(): the gauges read at scrape time

    # --- events (ops/metrics.py) ---------------------------------------------------------------

    def cycle_started(self) -> None:
        self._cycles.inc()
        self.view.cycle_started = self._monotonic()

    def cycle_ended(self) -> None:
        self.view.cycle_started = None

    def decision(self, action: str) -> None:
        self._decisions.labels(action).inc()

    def cluster_seen(self, members: MemberCounts | None, desired: int | None) -> None:
        self.view.members, self.view.desired = members, desired

    def newest_backup(self, age: timedelta | None) -> None:
        self.view.backup_success = None if age is None else self._clock() - age.total_seconds()

    def backup_taken(self, seconds: float, size: int) -> None:
        self._backups.labels("success").inc()
        self._backup_seconds.observe(seconds)
        self._backup_size = size
        self.view.backup_success = self._clock()

    def backup_failed(self) -> None:
        self._backups.labels("failure").inc()

    def restore_finished(self, ok: bool) -> None:
        self._restores.labels("success" if ok else "failure").inc()

    def etcd_restarted(self) -> None:
        self._etcd_restarts.inc()

    # --- for the daemon --------------------------------------------------------------------------

    def set_cert_expiry(self, expiry: Mapping[str, float]) -> None:
        """Each certificate's end of validity (unix time), by name."""
        self._cert_expiry = dict(expiry)

    def cycle_running_for(self) -> float | None:
        """Seconds the current control cycle has run, or None when none runs."""
        started = self.view.cycle_started
        return None if started is None else self._monotonic() - started

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The scrape's body and content type (the text format, or OpenMetrics when asked for)."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type

    def collect(self) -> Iterable[Metric]:
        """The gauges read at scrape time (the registry calls it)."""
        view, now = self.view, self._node_now()
        build = GaugeMetricFamily(
            "etcdmgr_build_info", "The running etcdmgr and Python (always 1).", labels=["version", "python"]
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield build
        yield GaugeMetricFamily("etcdmgr_is_leader", "1 while this node leads.", value=int(now.leading))
        peers = GaugeMetricFamily("etcdmgr_peers", "Other peers by this node's pings.", labels=["state"])
        peers.add_metric(["healthy"], now.healthy_peers)
        peers.add_metric(["unhealthy"], now.unhealthy_peers)
        yield peers
        yield GaugeMetricFamily(
            "etcdmgr_quarantined",
            "1 while this node's etcd member is quarantined.",
            value=int(now.quarantined),
        )
        yield GaugeMetricFamily(
            "etcdmgr_backup_interval_seconds", "The --backup-interval.", value=self._backup_interval
        )
        if self._backup_size is not None:
            yield GaugeMetricFamily(
                "etcdmgr_backup_size_bytes",
                "Size of the last backup this node took.",
                value=self._backup_size,
            )
        certs = GaugeMetricFamily(
            "etcdmgr_cert_expiry_timestamp_seconds", "End of each certificate's validity.", labels=["cert"]
        )
        for name, expiry in sorted(self._cert_expiry.items()):
            certs.add_metric([name], expiry)
        yield certs
        if now.leading:
            yield from _leader_view(view, self.cycle_running_for())


def _leader_view(view: LeaderView, running_for: float | None) -> Iterable[Metric]:
    yield GaugeMetricFamily(
        "etcdmgr_control_cycle_running_seconds",
        "How long the current control cycle has run (0 between cycles); only the leader reports it.",
        value=running_for or 0.0,
    )
    if view.members is not None:
        members = GaugeMetricFamily(
            "etcdmgr_etcd_members", "etcd's members by state; only the leader reports them.", labels=["state"]
        )
        members.add_metric(["healthy"], view.members.healthy)
        members.add_metric(["unhealthy"], view.members.unhealthy)
        members.add_metric(["learner"], view.members.learners)
        yield members
    if view.desired is not None:
        yield GaugeMetricFamily(
            "etcdmgr_etcd_member_count_desired",
            "The spec's member count; only the leader reports it.",
            value=view.desired,
        )
    if view.backup_success is not None:
        yield GaugeMetricFamily(
            "etcdmgr_backup_last_success_timestamp_seconds",
            "When the newest backup in the store was taken; only the leader reports it.",
            value=view.backup_success,
        )
