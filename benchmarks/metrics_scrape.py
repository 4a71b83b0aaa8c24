#!/usr/bin/env python3
"""What scraping /metrics costs the daemon: CPU while scraped every 100 ms, against idle.

Usage: python3 benchmarks/metrics_scrape.py [--seconds 60] [--interval 0.1] [--daemons 3]
                                            [--version 3.5.30]

Starts --daemons daemons (one cluster of that size, on a fresh loopback block) with
--etcd-manager-metrics-port, waits until they converge and back up, then measures the leading
daemon's own CPU time (user + system of the daemon process, not etcd's) over --seconds idle,
then over --seconds while /metrics is fetched every --interval on one kept-alive connection,
as Prometheus does. Target: the difference is under 2% of one CPU. The idle daemon's own
variation is about as large as that difference, so a last phase scrapes back to back for
--burst-seconds and divides the extra CPU by the scrapes: the CPU of one scrape, which is what
a scrape interval multiplies. Also prints the scrape's size and latency. Every process started
here is stopped by pid.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from figures import Figure, Skipped  # noqa: E402
from harness import Cluster, Daemon, wait_for  # noqa: E402

PORT = 9182
TARGET_PERCENT = 2.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system time of the process itself (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def is_leader(d: Daemon) -> bool:
    conn = http.client.HTTPConnection(d.ip, PORT, timeout=5)
    try:
        conn.request("GET", "/metrics")
        return b"\netcdmgr_is_leader 1.0\n" in conn.getresponse().read()
    except OSError:
        return False
    finally:
        conn.close()


def measure(pid: int, seconds: float, scrape: http.client.HTTPConnection | None, interval: float) -> dict[str, float]:
    """CPU percent of `pid` over `seconds`; with `scrape`, /metrics is fetched every `interval`."""
    latencies: list[float] = []
    size = 0
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    next_at = t0
    while (now := time.monotonic()) < t0 + seconds:
        if scrape is None:
            time.sleep(min(1.0, t0 + seconds - now))
            continue
        started = time.perf_counter()
        scrape.request("GET", "/metrics")
        response = scrape.getresponse()
        size = len(response.read())
        assert response.status == 200
        latencies.append(time.perf_counter() - started)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    elapsed = time.monotonic() - t0
    out = {"cpu_percent": 100 * (cpu_seconds(pid) - cpu0) / elapsed, "seconds": elapsed}
    if latencies:
        latencies.sort()
        out |= {
            "scrapes": len(latencies),
            "bytes": size,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--burst-seconds", type=float, default=10.0)
    parser.add_argument("--daemons", type=int, default=3)
    parser.add_argument("--version", default="3.5.30")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="etcdmgr-bench-") as tmp:
        c = Cluster(Path(tmp), args.daemons, extra_args=[f"--etcd-manager-metrics-port={PORT}"])
        try:
            c.configure(args.daemons, args.version)
            c.start()
            c.wait_members(args.daemons, timeout=120)
            leader = wait_for("a leader", lambda: next((d for d in c.daemons if is_leader(d)), None), 60)
            wait_for("a first backup", lambda: "took backup" in leader.log(), timeout=60)
            time.sleep(5)  # past the settling cycles after the change
            assert leader.proc is not None
            pid = leader.proc.pid
            idle = measure(pid, args.seconds, None, args.interval)
            conn = http.client.HTTPConnection(leader.ip, PORT, timeout=5)
            scraped = measure(pid, args.seconds, conn, args.interval)
            burst = measure(pid, args.burst_seconds, conn, 0.0)
            conn.close()
        finally:
            c.stop_all()
    cost = scraped["cpu_percent"] - idle["cpu_percent"]
    print(f"daemons: {args.daemons}; leader scraped every {args.interval * 1000:.0f} ms for {args.seconds:.0f} s")
    print(f"idle:     {idle['cpu_percent']:.2f}% CPU")
    print(
        f"scraped:  {scraped['cpu_percent']:.2f}% CPU ({scraped['scrapes']:.0f} scrapes of "
        f"{scraped['bytes']:.0f} bytes; p50 {scraped['p50_ms']:.2f} ms, p99 {scraped['p99_ms']:.2f} ms)"
    )
    per_scrape = (burst["cpu_percent"] - idle["cpu_percent"]) * burst["seconds"] / 100 / burst["scrapes"]
    print(f"cost:     {cost:.2f}% of one CPU (target < {TARGET_PERCENT}%)")
    print(
        f"back to back: {burst['scrapes'] / burst['seconds']:.0f} scrapes/s at {burst['cpu_percent']:.0f}% CPU: "
        f"{per_scrape * 1000:.2f} ms CPU per scrape, {per_scrape / args.interval * 100:.2f}% of one CPU "
        f"at one scrape per {args.interval * 1000:.0f} ms"
    )
    FOUND.append(Figure(f"CPU cost of a /metrics scrape every {args.interval * 1000:.0f} ms", cost, "% of a core",
                        target=TARGET_PERCENT, target_text=f"< {TARGET_PERCENT} %"))  # fmt: skip
    FOUND.append(Figure("leader daemon CPU, settled, not scraped", idle["cpu_percent"], "% of a core",
                        target=IDLE_TARGET, target_text=f"<= {IDLE_TARGET} %"))  # fmt: skip
    return 0 if cost < TARGET_PERCENT else 1


FOUND: list[Figure] = []  # what this run measured, for benchmarks/run_all.py
IDLE_TARGET = 0.5


def figures(quick: bool) -> list[Figure]:
    if quick:
        raise Skipped("measures two 60 s windows; not in --quick")
    main([])
    return FOUND


if __name__ == "__main__":
    raise SystemExit(main())
