"""The nemesis soak: real daemons under a writer, a reader and seeded faults, then the checks.

N daemons (tests/harness.py) on their own loopback block, spec N. An AckWriter writes a unique
key every 50 ms (v3 and v2 in turn) and a MonotonicReader checks linearizable reads; the
Observer samples every node every 0.5 s and the store every 0.2 s. The nemesis does one fault at a time
(each leaves a majority) and waits for the cluster to be whole again; between faults come
membership changes (spec down and back up) and version changes (in place 3.4 -> 3.5, logical
3.5 -> 3.4, now and then a logical detour 3.3.25 -> 3.5). At the end every fault is undone, the
cluster must settle, and the checks of tests/soak_checker.py run. `Soak.run` returns the figures.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import Cluster
from nemesis import Cgroups, Nemesis, Netfilter, tmpfs
from soak_checker import (
    Observer,
    Sample,
    availability,
    backup_gaps,
    elected_during,
    end_state,
    healthy_removals,
    max_serving_clusters,
    peer_port_answers,
    planned_spans,
    token_claims,
    unsettled,
)
from writer import AckWriter, Gateway, MonotonicReader, missing_acks

from etcdmgr.etcd.versions import find_binaries, in_place_upgrade_ok, installed_versions, version_key

START_VERSION = "3.4.23"
OLD_VERSION = "3.3.25"  # the logical detour: 3.x -> 3.3.25 -> 3.5
MEMBERSHIP = "membership"
VERSION = "version"


@dataclass
class SoakConfig:
    root: Path
    minutes: float
    seed: int
    nodes: int = 3
    # Fixed steps in order (fault names, "membership", "version:<X.Y.Z>"); None: seeded choices.
    schedule: Sequence[str] | None = None
    changes: bool = True  # membership and version changes between faults (seeded runs)
    backup_interval: float = 30.0
    replace_after: float = 30.0
    hold: tuple[float, float] = (4.0, 15.0)  # how long a fault lasts
    long_hold: tuple[float, float] = (15.0, 35.0)  # the store away, the clock off
    settle_timeout: float = 150.0  # how long the cluster may take to be whole again
    disk: str = "256m"  # the tmpfs of the last node, which the full-disk fault fills


@dataclass
class Step:
    name: str
    start: float
    end: float
    detail: str
    settled_after: float | None = None  # seconds from the end of the step to a whole cluster
    unsettled: str = ""  # why it was not whole in time
    planned: bool = False  # a logical version change: its quarantine is planned


@dataclass
class Soak:
    config: SoakConfig
    out: Callable[[str], None] = print
    steps: list[Step] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)
        self.t0 = time.monotonic()
        self.spec_count = self.config.nodes
        self.version = START_VERSION

    def say(self, text: str) -> None:
        self.out(f"{datetime.now():%H:%M:%S} +{time.monotonic() - self.t0:6.1f}s {text}")

    # --- the run ---------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        cfg = self.config
        tag = f"{os.getpid()}-{self.config.seed}"
        with ExitStack() as stack:
            cgroups = Cgroups(f"etcdmgr-soak-{tag}")
            stack.callback(cgroups.remove)
            netfilter = None
            if (why := Netfilter.available()) is None:
                netfilter = Netfilter(f"etcdmgr_soak_{tag.replace('-', '_')}")
                stack.callback(netfilter.remove)
            else:
                self.findings.append(f"no partitions in this run: {why}")
            full_disk = cfg.nodes if os.geteuid() == 0 else None
            if full_disk is not None:
                stack.enter_context(tmpfs(cfg.root / "data" / str(full_disk), cfg.disk))
            args = [
                f"--backup-interval={cfg.backup_interval:.0f}s",
                f"--replace-after={cfg.replace_after:.0f}s",
            ]
            self.cluster = c = Cluster(cfg.root, cfg.nodes, extra_args=args)
            stack.callback(c.stop_all)
            self.nemesis = Nemesis(c, self.rng, cgroups, netfilter, cfg.root, full_disk, self.say)
            stack.callback(self.nemesis.heal_all)  # first: a paused daemon cannot stop
            for d in c.daemons:
                self.nemesis.wrap(d)
            self.gateway = Gateway()
            self.observer = stack.enter_context(Observer(c, self.gateway))
            self.say(f"seed {cfg.seed}: {cfg.nodes} daemons on {c.block}.1-{cfg.nodes}, logs in {cfg.root}")
            c.configure(cfg.nodes, self.version)
            c.start()
            if self._settle(self.spec_count, self.version, 120.0) is None:
                raise RuntimeError(f"the cluster did not form: {self._why()}\n{c.logs()}")
            return self._under_load(stack)
        raise AssertionError("unreachable")  # ExitStack does not swallow exceptions

    def _under_load(self, stack: ExitStack) -> dict[str, Any]:
        cfg, c = self.config, self.cluster
        urls = [d.client_url for d in c.daemons]
        writer = stack.enter_context(AckWriter(urls, self.gateway))
        reader = stack.enter_context(MonotonicReader(urls, writer, random.Random(cfg.seed + 1)))
        start = time.monotonic()
        deadline = start + cfg.minutes * 60
        schedule = list(cfg.schedule) if cfg.schedule is not None else None
        while time.monotonic() < deadline and (schedule is None or schedule):
            step = schedule.pop(0) if schedule is not None else self._choose(deadline - time.monotonic())
            self._step(step)
            time.sleep(self.rng.uniform(2.0, 5.0))
        self.nemesis.heal_all()
        self._restart_dead("at the end")
        settled = self._settle(self.spec_count, self.version, 180.0)
        if settled is None:
            self.findings.append(f"the cluster was not whole 180s after the last fault: {self._why()}")
        time.sleep(3.0)
        writer.stop()
        end = time.monotonic()
        reader.stop()
        lost = self._lost(writer)
        final = self.observer.wait_next()
        problems = end_state(final, self.spec_count, self.version, peer_port_answers, c.daemons)
        return self._report(writer, reader, start, end, lost, problems)

    def _choose(self, left: float) -> str:
        r = self.rng.random()
        if self.config.changes and r < 0.12 and left > 90:
            return MEMBERSHIP
        if self.config.changes and r < 0.24 and left > 240:
            return f"{VERSION}:{self._next_version()}"
        return self.rng.choice(self.nemesis.available())

    def _next_version(self) -> str:
        installed = installed_versions()
        newest35 = max((v for v in installed if v.startswith("3.5.")), key=version_key, default=None)
        if self.version.startswith("3.4.") and newest35:
            return newest35
        if self.version.startswith("3.3.") and newest35:
            return newest35
        if find_binaries(OLD_VERSION) is not None and self.rng.random() < 0.3:
            return OLD_VERSION
        return START_VERSION

    # --- one step --------------------------------------------------------------------------------

    def _step(self, name: str) -> None:
        self._restart_dead(f"before {name}")
        started = time.monotonic()
        self.say(f"step {len(self.steps) + 1}: {name}")
        planned = False
        if name == MEMBERSHIP:
            detail = self._membership()
        elif name.startswith(VERSION + ":"):
            target = name.split(":", 1)[1]
            planned = not in_place_upgrade_ok(self.version, target)
            detail = self._change_version(target)
        else:
            lo, hi = self.config.long_hold if name in ("store_away", "clock_jump") else self.config.hold
            hold = self.rng.uniform(lo, hi)
            detail = self.nemesis.run(name, hold)  # it restarts whatever it stopped
        done = time.monotonic()
        step = Step(name.split(":")[0], started, done, detail, planned=planned)
        self.steps.append(step)
        self.say(f"  {detail}")
        waited = self._settle(self.spec_count, self.version, self.config.settle_timeout)
        if waited is None:
            step.unsettled = self._why()
            self.findings.append(
                f"step {len(self.steps)} ({detail}): not whole after {self.config.settle_timeout:.0f}s: {step.unsettled}"
            )
            self.say(f"  NOT whole after {self.config.settle_timeout:.0f}s: {step.unsettled}")
        else:
            step.settled_after = waited
            self.say(f"  whole again after {waited:.1f}s")
        if planned:  # the episode lasts until the new cluster is whole
            step.end = time.monotonic()

    def _membership(self) -> str:
        full = self.config.nodes
        small = 1 if full <= 3 else 3
        self.cluster.configure(small, self.version)
        self.spec_count = small
        shrunk = self._settle(small, self.version, self.config.settle_timeout)
        self.say(
            f"  spec {full} -> {small}: "
            + (f"{shrunk:.1f}s" if shrunk is not None else f"not done: {self._why()}")
        )
        self.cluster.configure(full, self.version)
        self.spec_count = full
        return f"member count {full} -> {small} -> {full}"

    def _change_version(self, target: str) -> str:
        before = self.version
        how = "in place" if in_place_upgrade_ok(before, target) else "logical"
        self.cluster.configure(self.spec_count, target)
        self.version = target
        return f"etcd {before} -> {target} ({how})"

    # --- waiting and undoing ---------------------------------------------------------------------

    def _settle(self, count: int, version: str, timeout: float) -> float | None:
        """Seconds until two samples in a row show the cluster whole; None after `timeout`."""
        started = time.monotonic()
        good = 0
        while time.monotonic() - started < timeout:
            sample = self.observer.wait_next()
            good = good + 1 if unsettled(sample, count, version) is None else 0
            if good >= 2:
                return time.monotonic() - started
            self._restart_dead("while waiting")
        return None

    def _why(self) -> str:
        sample = self.observer.latest()
        return (unsettled(sample, self.spec_count, self.version) or "whole") if sample else "no sample"

    def _restart_dead(self, when: str) -> None:
        """A daemon that exited without the nemesis asking is a finding; it is restarted."""
        for d in self.cluster.daemons:
            if not d.running:
                rc = d.proc.returncode if d.proc else None
                lines = [line.strip(" |+-") for line in d.log().splitlines() if line.strip(" |+-")]
                last_error = next(
                    (line for line in reversed(lines) if "Error" in line), lines[-1] if lines else ""
                )
                self.findings.append(
                    f"daemon {d.n} exited by itself (rc {rc}) {when}: {last_error} ({d.log_path})"
                )
                self.say(f"  daemon {d.n} exited by itself (rc {rc}); restarting it")
                d.start()

    def _lost(self, writer: AckWriter) -> list[str]:
        for d in self.cluster.daemons:
            try:
                return missing_acks(d.client_url, writer.acks, self.gateway)
            except (OSError, ValueError, KeyError):
                continue
        raise RuntimeError("no member answered the final read of the acknowledged keys")

    # --- figures ---------------------------------------------------------------------------------

    def _report(
        self,
        writer: AckWriter,
        reader: MonotonicReader,
        start: float,
        end: float,
        lost: list[str],
        problems: list[str],
    ) -> dict[str, Any]:
        samples: list[Sample] = list(self.observer.samples)
        self._save(samples)
        episodes = [(s.start, s.end) for s in self.steps if s.planned]
        spans = planned_spans(samples, episodes, writer.acks)
        avail = availability(writer.acks, start, end, spans)
        tokens = token_claims(samples, list(self.observer.stores))
        removals = healthy_removals(samples)
        gaps = backup_gaps(samples, 2 * self.config.backup_interval)
        rel = self._rel
        for key in lost[:20]:
            self.say(f"LOST acknowledged write {key}")
        for s in reader.stale[:20]:
            self.say(f"STALE read at {rel(s.at)} from {s.url}: {s.what}")
        for r in removals:
            self.say(f"REMOVED while healthy at {rel(r.at)}: member {r.member} (node {r.node}), {r.detail}")
        for g in gaps:
            self.say(
                f"NO BACKUP from {rel(g.start)} to {rel(g.end)} ({g.end - g.start:.0f}s) with a healthy quorum"
            )
        outages = []
        elections = []
        for a, b in avail.outages:
            election = elected_during(samples, a, b)
            cause = " (etcd elected a new leader)" if election else ""
            self.say(f"UNAVAILABLE from {rel(a)} for {b - a:.1f}s{cause}, during {self._during(a, b)}")
            outages.append({"at": round(a - self.t0, 1), "s": round(b - a, 1), "election": election})
            elections += [(a, b)] if election else []
        # What the manager answers for: etcd's own elections (a fault hit its leader) set apart.
        outside_elections = availability(writer.acks, start, end, [*spans, *elections])
        for t in tokens.unclaimed:
            self.say(f"UNCLAIMED cluster token {t} served clients")
        for p in problems:
            self.say(f"END STATE: {p}")
        for f in self.findings:
            self.say(f"FINDING: {f}")
        faults = Counter(s.name for s in self.steps)
        settle_times = [s.settled_after for s in self.steps if s.settled_after is not None]
        return {
            "seed": self.config.seed,
            "minutes": self.config.minutes,
            "nodes": self.config.nodes,
            "faults": dict(sorted(faults.items())),
            "acked": len(writer.acks),
            "lost": len(lost),
            "stale_reads": len(reader.stale),
            "reads": reader.reads,
            "max_serving_clusters": max_serving_clusters(samples),
            "tokens": len(tokens.tokens),
            "unclaimed_tokens": len(tokens.unclaimed),
            "healthy_removals": len(removals),
            "backup_gaps": len(gaps),
            "availability": round(avail.share, 4),
            "availability_outside_elections": round(outside_elections.share, 4),
            "max_unavailable_s": round(avail.max_unavailable, 1),
            "planned_quarantine_s": round(avail.planned, 1),
            "outages": outages,
            "election_stalls_s": round(sum(o["s"] for o in outages if o["election"]), 1),
            "longest_settle_s": round(max(settle_times, default=0.0), 1),
            "not_settled": sum(1 for s in self.steps if s.settled_after is None),
            "end_state": problems,
            "findings": len(self.findings),
        }

    def _save(self, samples: Sequence[Sample]) -> None:
        """The samples as JSON lines beside the logs, times relative to the soak's start."""
        with (self.config.root / "samples.jsonl").open("w") as f:
            for sample in samples:
                record = asdict(sample)
                record["at"] = round(sample.at - self.t0, 2)
                f.write(json.dumps(record, default=sorted) + "\n")

    def _during(self, a: float, b: float) -> str:
        """The last step that overlaps the stretch from a to b, with its recovery."""
        for i, step in reversed(list(enumerate(self.steps))):
            recovered = step.end + (0.0 if step.planned else step.settled_after or self.config.settle_timeout)
            if step.start <= b and a <= recovered:
                return f"step {i + 1} ({step.detail})"
        return "no step"

    def _rel(self, t: float) -> str:
        return f"+{t - self.t0:.1f}s"


def targets_missed(result: dict[str, Any], availability: str = "availability") -> list[str]:
    """The soak's targets that `result` misses (`availability`: which share must be >= 99%)."""
    checks = {
        "no acknowledged write lost": result["lost"] == 0,
        "no stale read": result["stale_reads"] == 0,
        "one cluster serving at a time": result["max_serving_clusters"] <= 1,
        "every token claimed before it served": result["unclaimed_tokens"] == 0,
        "no healthy member removed": result["healthy_removals"] == 0,
        "a backup within 2 x the interval": result["backup_gaps"] == 0,
        f"{availability} >= 99%": result[availability] >= 0.99,
        "unavailable < 10 s at a time": result["max_unavailable_s"] < 10,
        "whole again after every step": result["not_settled"] == 0,
        "healthy at the end": not result["end_state"],
    }
    return [name for name, ok in checks.items() if not ok]
