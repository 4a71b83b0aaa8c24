#!/usr/bin/env python3
"""How fast etcdmgr starts: a warm `ctl get`, and a seeded daemon to its first v2 write.

Usage: python3 benchmarks/startup.py [--runs N] [--cluster-runs N] [--version 3.4.23]
                                     [--block 127.0.90]

(a) `dist/etcdmgr.pyz ctl --backup-store=file://<tmp> get`, warm (archive already unpacked):
    median and min of --runs; target <= 0.3 s.
(b) One daemon already up and leading on <block>.1 with an empty store: seconds from invoking
    `ctl configure-cluster -member-count=1` to the first successful v2 put on its client URL
    (create quarantined, health, lift quarantine, health), beside a plain etcd of the same
    version started with etcdmgr.etcd.process on <block>.2, from spawn to its first v2 put;
    targets: <= 2 s and <= 2x raw etcd. Median of --cluster-runs fresh clusters.

Builds dist/etcdmgr.pyz when stale. Every process started here is stopped by pid.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from figures import Figure  # noqa: E402
from harness import Cluster, wait_for  # noqa: E402

from etcdmgr.etcd.launch import EtcdLaunch  # noqa: E402
from etcdmgr.etcd.process import EtcdProcess  # noqa: E402
from etcdmgr.etcd.versions import find_binaries  # noqa: E402

PYZ = ROOT / "dist" / "etcdmgr.pyz"
CTL_TARGET_S = 0.3
SEED_TARGET_S = 2.0
SEED_TARGET_RATIO = 2.0
POLL_S = 0.02  # the put loop's period bounds the resolution of (b)


def try_put(client_url: str) -> bool:
    req = urllib.request.Request(
        f"{client_url}/v2/keys/bench", data=b"value=1", method="PUT",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=1) as resp:
            return resp.status in (200, 201)
    except (OSError, ValueError):  # refused, quarantined, no leader yet
        return False


def until_put(client_url: str, started: float, timeout: float = 60.0) -> float:
    """Seconds from `started` (a perf_counter) to the first successful v2 put."""
    while not try_put(client_url):
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"no successful v2 put on {client_url} within {timeout:.0f} s")
        time.sleep(POLL_S)
    return time.perf_counter() - started


def ctl_get(runs: int, tmp: Path) -> list[float]:
    env = {**os.environ, "SHIV_ROOT": str(tmp / "shiv")}
    ctl = [str(PYZ), "ctl", f"--backup-store=file://{tmp / 'store'}"]
    # Seeds a spec so that get prints one, and unpacks the archive (the cold run, not counted).
    subprocess.run([*ctl, "-member-count=1", "-etcd-version=3.4.23", "configure-cluster"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*ctl, "get"], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def seed_to_put(tmp: Path, version: str, block: str) -> float:
    c = Cluster(tmp, 1, command=[str(PYZ)], block=block)
    try:
        c.start()
        # Only once the daemon leads does the seed race nothing but the controller itself.
        wait_for(
            "the daemon to lead", lambda: "must seed new cluster" in c[1].log(), timeout=30, interval=0.05
        )
        started = time.perf_counter()
        c.configure(1, version)
        return until_put(c[1].client_url, started)
    finally:
        c.stop_all()


async def raw_etcd_to_put(tmp: Path, version: str, ip: str) -> float:
    binaries = find_binaries(version)
    if binaries is None:
        raise SystemExit(f"etcd {version} is not installed (scripts/install-etcd {version})")
    peer, client = f"http://{ip}:2380", f"http://{ip}:4001"
    launch = EtcdLaunch(
        name="raw", binaries=binaries, data_dir=tmp / "raw" / "data",
        listen_peer_urls=[peer], advertise_peer_urls=[peer],
        listen_client_urls=[client], advertise_client_urls=[client],
        initial_cluster={"raw": [peer]}, initial_cluster_token="bench",
    )  # fmt: skip
    launch.data_dir.parent.mkdir(parents=True)
    started = time.perf_counter()
    proc = await EtcdProcess.start(launch, launch.data_dir.parent)
    async with proc:  # stops etcd on exit
        return await trio.to_thread.run_sync(until_put, client, started)


def line(label: str, times: Sequence[float], target: str = "") -> None:
    print(f"{label:<42} median {statistics.median(times):6.3f} s  min {min(times):6.3f} s"
          f"  ({len(times)} runs){target}", flush=True)  # fmt: skip


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def measure(runs: int, cluster_runs: int, version: str, block: str) -> list[Figure]:
    """Both figures, printed as they come and returned for benchmarks/run_all.py."""
    subprocess.run([sys.executable, str(ROOT / "build_zipapp.py")], check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="etcdmgr-bench-") as tmp_name:
        tmp = Path(tmp_name)
        gets = ctl_get(runs, tmp / "ctl")
        med = statistics.median(gets)
        line("(a) ctl get, warm", gets, f"  target <= {CTL_TARGET_S} s: {verdict(med <= CTL_TARGET_S)}")

        seeds, raws = [], []
        for i in range(cluster_runs):
            seeds.append(seed_to_put(tmp / f"seed{i}", version, block))
            raws.append(trio.run(raw_etcd_to_put, tmp / f"raw{i}", version, f"{block}.2"))
        seed, raw = statistics.median(seeds), statistics.median(raws)
        line(f"(b) configure-cluster -> first v2 put ({version})", seeds,
             f"  target <= {SEED_TARGET_S} s: {verdict(seed <= SEED_TARGET_S)}")  # fmt: skip
        line(f"    raw etcd spawn -> first v2 put ({version})", raws)
        print(f"    ratio {seed / raw:.1f}x raw etcd  target <= {SEED_TARGET_RATIO}x: "
              f"{verdict(seed / raw <= SEED_TARGET_RATIO)}")  # fmt: skip
    return [
        Figure("ctl get, warm (pyz)", med, target=CTL_TARGET_S, target_text=f"<= {CTL_TARGET_S} s"),
        Figure(f"seeded daemon: configure-cluster -> first v2 put, 1 member (etcd {version})", seed, raw=raw,
               target=min(SEED_TARGET_S, SEED_TARGET_RATIO * raw),
               target_text=f"<= {SEED_TARGET_S} s and <= {SEED_TARGET_RATIO:g}x raw"),
    ]  # fmt: skip


def figures(quick: bool) -> list[Figure]:
    return measure(5 if quick else 20, 1 if quick else 3, "3.4.23", "127.0.90")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="ctl get runs (default: %(default)s)")
    parser.add_argument("--cluster-runs", type=int, default=3, help="seed runs (default: %(default)s)")
    parser.add_argument("--version", default="3.4.23", help="etcd version (default: %(default)s)")
    parser.add_argument("--block", default="127.0.90", help="loopback /24 to use (default: %(default)s)")
    args = parser.parse_args(argv)
    measure(args.runs, args.cluster_runs, args.version, args.block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
