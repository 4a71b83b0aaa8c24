#!/usr/bin/env python3
"""How fast etcdmgr creates and grows a cluster, step by step, beside raw etcd doing the same.

Usage: python3 benchmarks/converge.py [--runs N] [--version 3.5.30] [--block 127.0.97]
                                      [--only create1,create3,create5,grow] [--pyz PATH] [--keep]

create N   N daemons of dist/etcdmgr.pyz up, the lowest leading an empty store: seconds from
           invoking `ctl configure-cluster -member-count=N` until a v2 put succeeds on every
           member's client URL. Raw: N etcds spawned at once as a static cluster, until a v2 put
           succeeds on each. Targets: 1 member <= 1.0 s; 3 <= raw + 1 s; 5 <= raw + 2 s.
grow 1->3  three daemons, one member serving: `ctl configure-cluster -member-count=3` until
           etcd lists three healthy voting members. Raw floor: the same by hand with etcdctl
           on one running etcd (add learner, start it, promote, add, start, promote; each call
           retried every 50 ms until etcd allows it). Target <= floor + 1 s.

Each run prints a timeline: what the daemons logged (decisions, etcd spawns and stops,
quarantine lifts, member adds, promotions, backups) and what the client saw, in seconds from
the command. Medians of --runs. Builds dist/etcdmgr.pyz when stale. Every process started here
is stopped by pid.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from figures import Figure, Skipped, figures_line  # noqa: E402
from harness import CLIENT_PORT, PEER_PORT, Cluster, wait_for  # noqa: E402

from etcdmgr.etcd.launch import EtcdLaunch, build_env  # noqa: E402
from etcdmgr.etcd.versions import EtcdBinaries, find_binaries  # noqa: E402

PYZ = ROOT / "dist" / "etcdmgr.pyz"
POLL_S = 0.02  # the client's polling period bounds the resolution
STEP_TIMEOUT = 90.0

# What a daemon log line means for the timeline (first matching substring wins).
EVENTS: tuple[tuple[str, str], ...] = (
    ("decision: ", "decide"),
    ("etcd.process: started etcd", "spawn etcd"),
    ("stopped etcd pid", "stop etcd"),
    ("reconfigure: etcd", "reconfigure"),
    ("took backup", "backup taken"),
    ("peer ", ""),  # "peer X joined cluster": below
    ("promoted ", "promoted"),
    ("not ready for promotion", "promotion refused"),
    ("retrying", "etcd refused, retrying"),
)


# -- what the client sees ----------------------------------------------------------------------


def try_put(client_url: str) -> bool:
    req = urllib.request.Request(
        f"{client_url}/v2/keys/bench",
        data=b"value=1",
        method="PUT",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(req, timeout=1) as resp:
            return resp.status in (200, 201)
    except (OSError, ValueError):  # refused, quarantined, no leader yet
        return False


def until_puts(urls: Sequence[str], started: float, note: Callable[[str, float], None]) -> float:
    """Seconds from `started` (a perf_counter) until a v2 put succeeded on each of `urls`, each
    polled on its own (a put to a member without a leader blocks until its timeout)."""

    def one(url: str) -> float:
        while not try_put(url):
            if time.perf_counter() - started > STEP_TIMEOUT:
                raise RuntimeError(f"no v2 put on {url} within {STEP_TIMEOUT:.0f} s")
            time.sleep(POLL_S)
        took = time.perf_counter() - started
        note(f"client: first put on {url}", took)
        return took

    with ThreadPoolExecutor(len(urls)) as pool:
        return max(pool.map(one, urls))


def etcdctl(binaries: EtcdBinaries, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binaries.etcdctl), f"--endpoints={endpoint}", "--command-timeout=2s", *args],
        capture_output=True,
        text=True,
        timeout=10,
        env={**os.environ, "ETCDCTL_API": "3"},
    )


def voting_healthy(binaries: EtcdBinaries, endpoint: str, count: int) -> bool:
    """etcd lists `count` started voting members, none a learner, each healthy."""
    listed = etcdctl(binaries, endpoint, "member", "list", "-w", "json")
    if listed.returncode != 0:
        return False
    members = json.loads(listed.stdout).get("members", [])
    if len(members) != count or any(m.get("isLearner") or not m.get("clientURLs") for m in members):
        return False
    urls = ",".join(m["clientURLs"][0] for m in members)
    return etcdctl(binaries, urls, "endpoint", "health").returncode == 0


# -- the daemons' side of the timeline ---------------------------------------------------------


def daemon_events(c: Cluster, after: float) -> list[tuple[float, str]]:
    """(wall-clock stamp, what) of every timeline line the daemons logged after `after`."""
    names = {d.peer_id(): f"d{d.n}" for d in c.daemons if (d.data_dir / "myid").exists()}
    out = []
    for d in c.daemons:
        for line in d.log().splitlines():
            try:
                at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:  # a continuation line of a multi-line record
                continue
            if at < after:
                continue
            message = line.split(": ", 1)[1] if ": " in line else line
            for text, label in EVENTS:
                if text not in line:
                    continue
                if text == "peer ":
                    if "joined cluster" not in line:
                        break
                    label = "member started"
                elif label == "decide":
                    message = line.split("decision: ", 1)[1]
                for pid, short in names.items():
                    message = message.replace(pid, short)
                out.append((at, f"d{d.n} {label}: {message[:110]}"))
                break
    return sorted(out)


def print_timeline(
    title: str, started_wall: float, client: list[tuple[str, float]], c: Cluster | None
) -> None:
    rows = [(at - started_wall, what) for at, what in (daemon_events(c, started_wall) if c else [])]
    rows += [(t, what) for what, t in client]
    print(f"  timeline: {title}", flush=True)
    for t, what in sorted(rows):
        print(f"    +{t:6.3f} s  {what}", flush=True)


# -- ours --------------------------------------------------------------------------------------


def leading(c: Cluster) -> None:
    """Start the daemons and wait until the lowest leads an empty store (so the seed races nothing)."""
    c.start()
    wait_for(
        "the daemon to lead",
        lambda: any("must seed new cluster" in d.log() for d in c.daemons),
        timeout=60,
        interval=0.05,
    )


def ours_create(tmp: Path, pyz: Path, n: int, version: str, block: str) -> float:
    c = Cluster(tmp, n, command=[str(pyz)], block=block)
    client: list[tuple[str, float]] = []
    try:
        leading(c)
        wall, started = time.time(), time.perf_counter()
        c.configure(n, version)
        client.append(("client: configure-cluster returned", time.perf_counter() - started))
        took = until_puts([d.client_url for d in c.daemons], started, lambda w, t: client.append((w, t)))
        print_timeline(f"create {n}, ours {took:.2f} s", wall, client, c)
        return took
    except Exception:
        print(c.logs(), file=sys.stderr)
        raise
    finally:
        c.stop_all()


def ours_grow(tmp: Path, pyz: Path, version: str, block: str) -> float:
    binaries = _binaries(version)
    c = Cluster(tmp, 3, command=[str(pyz)], block=block)
    client: list[tuple[str, float]] = []
    try:
        leading(c)
        c.configure(1, version)
        c.wait_members(1, timeout=60)
        c.put("hello", "world")
        wall, started = time.time(), time.perf_counter()
        c.configure(3, version)
        client.append(("client: configure-cluster returned", time.perf_counter() - started))
        wait_for(
            "3 healthy voting members",
            lambda: voting_healthy(binaries, c[1].client_url, 3),
            timeout=STEP_TIMEOUT,
            interval=POLL_S,
        )
        took = time.perf_counter() - started
        client.append(("client: 3 healthy voting members", took))
        print_timeline(f"grow 1 -> 3, ours {took:.2f} s", wall, client, c)
        return took
    except Exception:
        print(c.logs(), file=sys.stderr)
        raise
    finally:
        c.stop_all()


# -- raw etcd ----------------------------------------------------------------------------------


def _binaries(version: str) -> EtcdBinaries:
    binaries = find_binaries(version)
    if binaries is None:
        raise Skipped(f"etcd {version} is not installed")
    return binaries


class RawEtcds:
    """Bare etcd processes on <block>.N, started and stopped by pid."""

    def __init__(self, tmp: Path, version: str, block: str) -> None:
        self.tmp, self.block, self.binaries = tmp, block, _binaries(version)
        self.procs: list[subprocess.Popen[bytes]] = []
        tmp.mkdir(parents=True)

    def peer(self, n: int) -> str:
        return f"http://{self.block}.{n}:{PEER_PORT}"

    def client(self, n: int) -> str:
        return f"http://{self.block}.{n}:{CLIENT_PORT}"

    def start(self, n: int, cluster: Sequence[int], state: str = "new") -> None:
        launch = EtcdLaunch(
            name=f"m{n}",
            binaries=self.binaries,
            data_dir=self.tmp / f"m{n}",
            listen_peer_urls=[self.peer(n)],
            advertise_peer_urls=[self.peer(n)],
            listen_client_urls=[self.client(n)],
            advertise_client_urls=[self.client(n)],
            initial_cluster={f"m{i}": [self.peer(i)] for i in cluster},
            initial_cluster_token="bench",
            initial_cluster_state="new" if state == "new" else "existing",
        )
        with (self.tmp / f"m{n}.log").open("ab") as log:
            self.procs.append(
                subprocess.Popen(
                    [str(self.binaries.etcd)],
                    env=build_env(launch, os.environ),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )

    def ctl_until(self, what: str, *args: str) -> None:
        """An etcdctl call, retried every 50 ms until etcd allows it."""
        wait_for(
            what,
            lambda: etcdctl(self.binaries, self.client(1), *args).returncode == 0,
            timeout=STEP_TIMEOUT,
            interval=0.05,
        )

    def member_id(self, n: int) -> str:
        members = json.loads(etcdctl(self.binaries, self.client(1), "member", "list", "-w", "json").stdout)
        return next(format(m["ID"], "x") for m in members["members"] if self.peer(n) in m["peerURLs"])

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def raw_create(tmp: Path, n: int, version: str, block: str) -> float:
    raw = RawEtcds(tmp, version, block)
    try:
        started = time.perf_counter()
        for i in range(1, n + 1):
            raw.start(i, range(1, n + 1))
        return until_puts([raw.client(i) for i in range(1, n + 1)], started, lambda w, t: None)
    finally:
        raw.stop()


def raw_grow(tmp: Path, version: str, block: str) -> float:
    """The floor: 1 -> 3 by hand, each step as soon as etcd allows it."""
    raw = RawEtcds(tmp, version, block)
    steps: list[tuple[str, float]] = []
    try:
        raw.start(1, [1])
        until_puts([raw.client(1)], time.perf_counter(), lambda w, t: None)
        started = time.perf_counter()
        for n in (2, 3):
            raw.ctl_until(
                f"member add m{n}", "member", "add", f"m{n}", f"--peer-urls={raw.peer(n)}", "--learner"
            )
            steps.append((f"raw: m{n} added as a learner", time.perf_counter() - started))
            raw.start(n, range(1, n + 1), state="existing")
            raw.ctl_until(f"promote m{n}", "member", "promote", raw.member_id(n))
            steps.append((f"raw: m{n} promoted", time.perf_counter() - started))
        wait_for(
            "3 healthy voting members",
            lambda: voting_healthy(raw.binaries, raw.client(1), 3),
            timeout=STEP_TIMEOUT,
            interval=POLL_S,
        )
        took = time.perf_counter() - started
        print_timeline(f"grow 1 -> 3, raw floor {took:.2f} s", 0, steps, None)
        return took
    finally:
        raw.stop()


# -- figures -----------------------------------------------------------------------------------

CREATE_SLACK = {1: None, 3: 1.0, 5: 2.0}  # seconds over raw; 1 member has an absolute target
CREATE_ONE_TARGET = 1.0
GROW_SLACK = 1.0


def measure(only: Sequence[str], runs: int, version: str, block: str, pyz: Path, keep: bool) -> list[Figure]:
    figures = []
    tmp = Path(tempfile.mkdtemp(prefix="etcdmgr-bench-"))
    try:
        for n in (1, 3, 5):
            if f"create{n}" not in only:
                continue
            ours = [ours_create(tmp / f"create{n}-{i}", pyz, n, version, block) for i in range(runs)]
            raws = [raw_create(tmp / f"raw{n}-{i}", n, version, block) for i in range(runs)]
            o, r = statistics.median(ours), statistics.median(raws)
            slack = CREATE_SLACK[n]
            target, text = (
                (CREATE_ONE_TARGET, f"<= {CREATE_ONE_TARGET} s")
                if slack is None
                else (r + slack, f"<= raw + {slack:g} s")
            )
            figures.append(
                Figure(
                    f"create {n} member{'s' if n > 1 else ''}: configure-cluster -> every member "
                    f"takes a v2 put (etcd {version})",
                    o,
                    raw=r,
                    target=target,
                    target_text=text,
                )
            )
        if "grow" in only:
            ours = [ours_grow(tmp / f"grow-{i}", pyz, version, block) for i in range(runs)]
            raws = [raw_grow(tmp / f"rawgrow-{i}", version, block) for i in range(runs)]
            o, r = statistics.median(ours), statistics.median(raws)
            figures.append(
                Figure(
                    f"grow 1 -> 3: configure-cluster -> 3 healthy voting members (etcd {version})",
                    o,
                    raw=r,
                    target=r + GROW_SLACK,
                    target_text=f"<= raw floor + {GROW_SLACK:g} s",
                )
            )
    finally:
        if keep:
            print(f"logs: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return figures


def build() -> None:
    subprocess.run([sys.executable, str(ROOT / "build_zipapp.py")], check=True, capture_output=True)


def figures(quick: bool) -> list[Figure]:
    """For benchmarks/run_all.py: one run each when quick, else the median of three."""
    build()
    return measure(
        ("create1", "create3", "create5", "grow"), 1 if quick else 3, "3.5.30", "127.0.97", PYZ, False
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default: %(default)s)")
    parser.add_argument("--version", default="3.5.30", help="etcd version (default: %(default)s)")
    parser.add_argument("--block", default="127.0.97", help="loopback /24 to use (default: %(default)s)")
    parser.add_argument(
        "--only", default="create1,create3,create5,grow", help="comma-separated (default: all)"
    )
    parser.add_argument("--pyz", type=Path, help="archive to measure (default: build dist/etcdmgr.pyz)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs) afterwards")
    args = parser.parse_args(argv)
    if args.pyz is None:
        build()
    found = measure(args.only.split(","), args.runs, args.version, args.block, args.pyz or PYZ, args.keep)
    for f in found:
        ratio = f" ({f.ratio:.1f}x)" if f.ratio else ""
        print(
            f"{f.name}: ours {f.ours:.2f} s, raw {f.raw:.2f} s{ratio}; target {f.target_text} "
            f"({f.target:.2f} s): {'OK' if f.ok else 'MISSED'}",
            flush=True,
        )
    print(figures_line(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
