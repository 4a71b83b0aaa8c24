"""What a soak saw of the cluster every half second, and the checks run on it at the end.

`Observer` polls each node (its daemon and etcd processes, the cluster id, members and health its
etcd answers on the client port, or on the quarantine port) every half second, and the backup
store (spec, created marker, restore claims, backups) five times a second: a restore's claim
lives only while the restore runs. The checks are pure functions over those samples.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import CLIENT_PORT, QUARANTINE_PORT, Cluster, Daemon
from nemesis import etcd_pid
from writer import Ack, Gateway, request

from etcdmgr.store.layout import CLAIM_FILE, CONTROL_DIR, CREATED_FILE, SPEC_FILE, as_backup_name

PROBE_TIMEOUT = 0.8
OUTAGE = 1.0  # a longer stretch without an acknowledged write is reported


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    node: int | None  # the node whose address its peer URL names
    client_port: int | None
    learner: bool


@dataclass(frozen=True)
class NodeSample:
    n: int
    daemon_up: bool
    etcd_pid: int | None
    token: str | None  # ETCD_INITIAL_CLUSTER_TOKEN of its etcd
    cluster_id: str | None  # answered on the client port: this node serves clients
    members: tuple[Member, ...] | None
    healthy: bool
    version: str | None
    quarantined_id: str | None  # answered on the quarantine port
    raft_term: int | None = None
    answered_at: float | None = None  # when the client port answered (time.monotonic())


@dataclass(frozen=True)
class StoreSample:
    present: bool
    at: float = 0.0  # time.monotonic()
    spec_count: int | None = None
    spec_version: str | None = None
    created: bool = False
    claims: tuple[str, ...] = ()  # cluster tokens claimed by restores
    backups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    nodes: tuple[NodeSample, ...]
    store: StoreSample

    def node(self, n: int) -> NodeSample:
        return next(s for s in self.nodes if s.n == n)

    def serving(self) -> set[str]:
        return {s.cluster_id for s in self.nodes if s.cluster_id}

    def members(self) -> tuple[Member, ...] | None:
        """The member list of a healthy node (any node's when none is healthy)."""
        answered = [s for s in self.nodes if s.members is not None]
        best = [s for s in answered if s.healthy] or answered
        return best[0].members if best else None

    def healthy_quorum(self) -> bool:
        """A quorum of the voting members is healthy (learners do not count towards it)."""
        voting = [m for m in self.members() or () if not m.learner]
        healthy = sum(1 for m in voting if m.node is not None and self.node(m.node).healthy)
        return bool(voting) and healthy >= len(voting) // 2 + 1

    def quarantined(self) -> bool:
        return any(s.quarantined_id for s in self.nodes)

    def raft_term(self) -> int:
        return max((s.raft_term or 0 for s in self.nodes), default=0)


def node_of(url: str, block: str) -> int | None:
    host = urlsplit(url).hostname or ""
    return int(host.rsplit(".", 1)[1]) if host.startswith(block + ".") else None


class Observer:
    """Samples the cluster every `interval` seconds in a thread, until stopped."""

    def __init__(
        self, cluster: Cluster, gateway: Gateway, interval: float = 0.5, store_interval: float = 0.2
    ) -> None:
        self.cluster = cluster
        self.gateway = gateway
        self.interval = interval
        self.store_interval = store_interval
        self.samples: list[Sample] = []
        self.stores: list[StoreSample] = []
        self._tokens: dict[int, str | None] = {}  # etcd pid -> its cluster token
        self._versions: dict[int, str | None] = {}  # etcd pid -> its version
        self._pool = ThreadPoolExecutor(max_workers=len(cluster.daemons))
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name="observer", daemon=True),
            threading.Thread(target=self._run_store, name="store-observer", daemon=True),
        ]
        self.store = Path(cluster.store_url.removeprefix("file://"))

    def __enter__(self) -> Observer:
        self.stores.append(self._store())
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self._pool.shutdown()

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def wait_next(self) -> Sample:
        """The first sample begun after this call."""
        count = len(self.samples)
        while len(self.samples) <= count + 1:
            time.sleep(0.1)
        return self.samples[-1]

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            nodes = tuple(self._pool.map(self._node, self.cluster.daemons))
            self.samples.append(Sample(started, nodes, self.stores[-1]))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _run_store(self) -> None:
        while not self._stop.wait(self.store_interval):
            self.stores.append(self._store())

    def _node(self, d: Daemon) -> NodeSample:
        pid = etcd_pid(d)
        token = version = None
        if pid is not None:
            if pid not in self._tokens:
                self._tokens[pid] = _environ(pid).get("ETCD_INITIAL_CLUSTER_TOKEN")
            token = self._tokens[pid]
        cluster_id = members = quarantined = term = answered_at = None
        healthy = False
        try:
            cluster_id, members = self._member_list(f"http://{d.ip}:{CLIENT_PORT}")
            answered_at = time.monotonic()
            answer, _ = request("GET", f"http://{d.ip}:{CLIENT_PORT}/health", timeout=PROBE_TIMEOUT)
            healthy = answer.get("health") in ("true", True)
            status = self.gateway.post(
                f"http://{d.ip}:{CLIENT_PORT}", "maintenance/status", {}, PROBE_TIMEOUT
            )
            term = int(status.get("raftTerm", status.get("raft_term", 0)))
            if pid is not None:
                if self._versions.get(pid) is None:
                    answer, _ = request("GET", f"http://{d.ip}:{CLIENT_PORT}/version", timeout=PROBE_TIMEOUT)
                    self._versions[pid] = str(answer.get("etcdserver"))
                version = self._versions[pid]
        except (OSError, ValueError, KeyError):
            if cluster_id is None:
                with suppress(OSError, ValueError, KeyError):
                    quarantined, _ = self._member_list(f"http://{d.ip}:{QUARANTINE_PORT}")
        return NodeSample(
            d.n, d.running, pid, token, cluster_id, members, healthy, version, quarantined, term, answered_at
        )

    def _member_list(self, url: str) -> tuple[str, tuple[Member, ...]]:
        answer = self.gateway.post(url, "cluster/member/list", {}, PROBE_TIMEOUT)
        members = tuple(
            Member(
                str(m["ID"]),
                str(m.get("name", "")),
                node_of(m["peerURLs"][0], self.cluster.block) if m.get("peerURLs") else None,
                urlsplit(m["clientURLs"][0]).port if m.get("clientURLs") else None,
                bool(m.get("isLearner")),
            )
            for m in answer.get("members", [])
        )
        return str(answer["header"]["cluster_id"]), members

    def _store(self) -> StoreSample:
        at = time.monotonic()
        control = self.store / CONTROL_DIR
        try:
            names = [p.name for p in self.store.iterdir()]
        except OSError:
            return StoreSample(present=False, at=at)
        spec: dict[str, Any] = {}
        with suppress(OSError, ValueError):
            spec = json.loads((control / SPEC_FILE).read_text())
        claims = []
        for claim in control.glob(f"*/{CLAIM_FILE}"):
            with suppress(OSError, ValueError):
                claims.append(str(json.loads(claim.read_text())["clusterToken"]))
        return StoreSample(
            present=True,
            at=at,
            spec_count=spec.get("memberCount"),
            spec_version=spec.get("etcdVersion"),
            created=(control / CREATED_FILE).exists(),
            claims=tuple(claims),
            backups=frozenset(n for n in names if as_backup_name(n) is not None),
        )


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


def unsettled(s: Sample, count: int, version: str | None) -> str | None:
    """Why the cluster in sample `s` is not yet healthy at `count` members of `version`
    (None when it is): every daemon up, every member healthy, voting and serving clients."""
    if not s.store.present:
        return "the backup store is away"
    down = [n.n for n in s.nodes if not n.daemon_up]
    if down:
        return f"daemon(s) {down} not running"
    if s.quarantined():
        return "quarantined"
    members = s.members()
    if members is None:
        return "no member list"
    if len(members) != count:
        return f"{len(members)} members, not {count}"
    if any(m.learner for m in members):
        return "a learner is not promoted yet"
    if any(m.client_port != CLIENT_PORT for m in members):
        return "a member advertises another client port"
    if len(s.serving()) != 1:
        return f"{len(s.serving())} clusters serve clients"
    for m in members:
        node = s.node(m.node) if m.node is not None else None
        if node is None or not node.healthy:
            return f"member {m.name} (node {m.node}) is not healthy"
        if version is not None and node.version != version:
            return f"node {m.node} runs {node.version}, not {version}"
    return None


# --- the checks ------------------------------------------------------------------------------------


def max_serving_clusters(samples: Sequence[Sample]) -> int:
    return max((len(s.serving()) for s in samples), default=0)


@dataclass
class TokenReport:
    tokens: list[str] = field(default_factory=list)  # in the order they first served clients
    unclaimed: list[str] = field(default_factory=list)  # served before any claim could cover them


def token_claims(samples: Sequence[Sample], stores: Sequence[StoreSample]) -> TokenReport:
    """Each token that served clients was claimed in the store before its first answer: by a
    restore's claim naming it, or (one token only, the first created) by the created marker."""
    claimed_at: dict[str, float] = {}
    created_at: float | None = None
    for store in stores:
        for claimed in store.claims:
            claimed_at.setdefault(claimed, store.at)
        if store.created and created_at is None:
            created_at = store.at
    report = TokenReport()
    created_used = False
    for s in samples:
        for node in s.nodes:
            token = node.token
            if node.cluster_id is None or token is None or token in report.tokens:
                continue
            report.tokens.append(token)
            served = node.answered_at if node.answered_at is not None else s.at
            if claimed_at.get(token, served) < served:
                continue
            if created_at is not None and created_at < served and not created_used:
                created_used = True
            else:
                report.unclaimed.append(token)
    return report


@dataclass(frozen=True)
class Removal:
    at: float
    member: str
    node: int | None
    detail: str


def healthy_removals(samples: Sequence[Sample]) -> list[Removal]:
    """Members removed while their etcd was healthy, without the spec shrinking below the
    member count: a member that healthy nodes of its cluster list no more (to the end of what
    was seen of that cluster), whose own node answered healthy when it was last listed."""
    last_view: dict[str, int] = {}  # cluster id -> last sample with a healthy node's list
    listed: dict[tuple[str, str], tuple[int, Member, int]] = {}  # -> (sample, member, count)
    for i, s in enumerate(samples):
        for node in s.nodes:
            if node.healthy and node.cluster_id and node.members is not None:
                last_view[node.cluster_id] = i
                for m in node.members:
                    listed[node.cluster_id, m.id] = (i, m, len(node.members))
    found = []
    for (cluster_id, _), (i, m, count) in listed.items():
        if last_view[cluster_id] == i or m.node is None:
            continue
        removed = next(
            j
            for j in range(i + 1, len(samples))
            if any(n.cluster_id == cluster_id and n.healthy for n in samples[j].nodes)
        )
        specs = [s.store.spec_count for s in samples[i : removed + 1] if s.store.spec_count is not None]
        shrunk = bool(specs) and min(specs) < count
        if samples[i].node(m.node).healthy and not shrunk:
            found.append(
                Removal(
                    samples[removed].at,
                    m.name,
                    m.node,
                    f"spec {specs[-1] if specs else None}, {count} members before",
                )
            )
    return found


@dataclass(frozen=True)
class BackupGap:
    start: float
    end: float


def backup_gaps(samples: Sequence[Sample], limit: float) -> list[BackupGap]:
    """Stretches longer than `limit` without a new backup in the store, counted only while a
    healthy quorum served clients from an unquarantined cluster with the store in place."""
    gaps: list[BackupGap] = []
    known: set[str] = set()
    since: float | None = None  # start of the current eligible stretch without a new backup
    for s in samples:
        new = bool(s.store.backups - known)
        known |= s.store.backups
        eligible = s.store.present and s.healthy_quorum() and not s.quarantined()
        if not eligible or new:
            if since is not None and s.at - since > limit:
                gaps.append(BackupGap(since, s.at))
            since = s.at if eligible else None
        elif since is None:
            since = s.at
    if since is not None and samples and samples[-1].at - since > limit:
        gaps.append(BackupGap(since, samples[-1].at))
    return gaps


@dataclass(frozen=True)
class Availability:
    windows: int  # 1-second windows outside planned quarantine
    served: int  # of them, windows in which a write was acknowledged
    max_unavailable: float  # longest time without an acknowledged write, outside planned quarantine
    planned: float  # seconds of planned quarantine without acknowledged writes
    outages: list[tuple[float, float]]  # unplanned stretches of more than OUTAGE without an ack

    @property
    def share(self) -> float:
        return self.served / self.windows if self.windows else 1.0


def planned_spans(
    samples: Sequence[Sample], episodes: Iterable[tuple[float, float]], acks: Sequence[Ack]
) -> list[tuple[float, float]]:
    """Of each planned episode (a logical version change, a restore) in which a quarantine was
    seen, the span from its start to the first acknowledged write after the last quarantine seen
    (clients are cut off when the leader begins, before etcd answers on the quarantine port)."""
    ack_times = [a.at for a in acks]
    spans = []
    for start, end in episodes:
        seen = [s.at for s in samples if start <= s.at <= end and s.quarantined()]
        if seen:
            spans.append((start, next((t for t in ack_times if t > seen[-1]), end)))
    return spans


def availability(
    acks: Sequence[Ack], start: float, end: float, planned: Sequence[tuple[float, float]]
) -> Availability:
    def in_planned(t: float) -> bool:
        return any(a <= t < b for a, b in planned)

    acked_windows = {int(a.at - start) for a in acks if start <= a.at < end}
    windows = served = 0
    planned_down = 0.0
    for w in range(int(end - start)):
        if in_planned(start + w + 0.5):
            planned_down += 0.0 if w in acked_windows else 1.0
            continue
        windows += 1
        served += w in acked_windows
    longest = 0.0
    outages = []
    times = [start, *sorted(a.at for a in acks if start <= a.at < end), end]
    for a, b in itertools.pairwise(times):
        overlap = sum(max(0.0, min(b, pe) - max(a, ps)) for ps, pe in planned)
        longest = max(longest, b - a - overlap)
        if b - a - overlap > OUTAGE:
            outages.append((a, b))
    return Availability(windows, served, longest, planned_down, outages)


def elected_during(samples: Sequence[Sample], start: float, end: float) -> bool:
    """Whether etcd held an election between `start` and `end` (its raft term grew)."""
    before = [s.raft_term() for s in samples if s.at <= start and s.raft_term()]
    after = [s.raft_term() for s in samples if s.at >= end and s.raft_term()]
    return bool(before and after) and after[0] > before[-1]


def end_state(
    s: Sample, count: int, version: str | None, answers: Callable[[Daemon], bool], daemons: Iterable[Daemon]
) -> list[str]:
    """What is wrong with the cluster at the end (empty when nothing)."""
    problems = []
    if why := unsettled(s, count, version):
        problems.append(why)
    problems += [f"daemon {d.n} does not answer on its peer port" for d in daemons if not answers(d)]
    return problems


def peer_port_answers(d: Daemon, port: int = 8000) -> bool:
    """The daemon's peer API answers an HTTP request (refusing it, as it is no websocket)."""
    try:
        request("GET", f"http://{d.ip}:{port}/", timeout=3)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True
