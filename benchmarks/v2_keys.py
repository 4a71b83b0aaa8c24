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
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from etcd_helpers import client_url, launch, running  # noqa: E402

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
        raise SystemExit(f"etcd {args.version} is not installed")
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=200_000)
    p.add_argument("--version", default="3.5.30")
    p.add_argument("--ip", default="127.0.78.31")
    figures = trio.run(run, p.parse_args(argv))
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
