#!/usr/bin/env python3
"""Writing and saving a v2 keyspace: restore_v2's writes and a backup's v2 dump, with memory.

Usage: python3 benchmarks/v2_keys.py [--keys 200000] [--version 3.5.30] [--ip 127.0.78.31]

Starts one etcd (v2 API on), writes --keys keys of 100 B in 100 folders with `EtcdClient.load_v2`
(what a restore does with a backup's v2 keys), then dumps them as a backup does (`dump_v2` +
`write_v2_file`). Prints keys/s, this process's peak RSS growth during the dump, and the load
average; the last line holds the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from etcd_helpers import client_url, launch, running  # noqa: E402
from figures import Figure, Skipped  # noqa: E402

from etcdmgr.backup.v2file import write_v2_file  # noqa: E402
from etcdmgr.etcd.client import EtcdClient  # noqa: E402
from etcdmgr.etcd.http import V2Node  # noqa: E402
from etcdmgr.etcd.versions import find_binaries  # noqa: E402


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    """Make VmHWM start again from the current RSS (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


async def run(args: argparse.Namespace) -> dict[str, float]:
    binaries = find_binaries(args.version)
    if binaries is None:
        raise Skipped(f"etcd {args.version} is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="etcdmgr-bench-"))
    nodes = [V2Node(f"/bench/d{i % 100:02d}/k{i:08d}", "x" * 100, None) for i in range(args.keys)]
    figures: dict[str, float] = {"keys": args.keys}
    try:
        async with running(launch(binaries, tmp, "m1", args.ip)):
            client = EtcdClient([client_url(args.ip)], binaries, timeout=30)
            started = time.perf_counter()
            await client.load_v2(nodes)
            took = time.perf_counter() - started
            figures |= {"load_s": round(took, 2), "load_keys_per_s": round(args.keys / took)}
            print(f"load_v2: {args.keys} keys in {took:.2f} s ({args.keys / took:.0f} keys/s); "
                  f"load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
            del nodes
            base = _status("VmRSS:")
            _reset_peak()
            started = time.perf_counter()
            dumped = await client.dump_v2()
            await trio.to_thread.run_sync(write_v2_file, dumped, tmp / "v2.json.gz")
            took = time.perf_counter() - started
            growth = _status("VmHWM:") - base
            figures |= {"dump_s": round(took, 2), "dump_rss_growth_mb": round(growth, 1)}
            print(f"dump_v2 + write_v2_file: {len(dumped)} nodes in {took:.2f} s, RSS +{growth:.0f} MB; "
                  f"load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return figures


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=200_000)
    p.add_argument("--version", default="3.5.30")
    p.add_argument("--ip", default="127.0.78.31")
    return p


def figures(quick: bool) -> list[Figure]:
    """For benchmarks/run_all.py: 200k keys (20k quick). The target scales the issue's 200k keys
    in 15 s; the v2 dump's memory target is 80 MB."""
    found = trio.run(run, parser().parse_args(["--keys", "20000" if quick else "200000"]))
    n = found["keys"]
    return [
        Figure(f"restore's v2 writes, {n:.0f} keys", found["load_s"], target=15.0 * n / 200_000,
               target_text="<= 15 s per 200k keys"),
        Figure(f"backup's v2 dump: RSS growth, {n:.0f} keys", found["dump_rss_growth_mb"], unit="MB",
               target=80.0, target_text="<= 80 MB"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    found = trio.run(run, parser().parse_args(argv))
    print(json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
