#!/usr/bin/env python3
"""Backup and restore speed against the bare etcd tools, with 100k keys x 100 B (~18 MB db).

Usage: python3 benchmarks/backup.py [--version 3.5.30] [--keys 100000] [--runs 3] [--ip 127.0.78.1]
                                    [--db-mb MB [--value-size BYTES] [--random]]

Loads the keys into a single etcd through the v3 JSON gateway (128 puts per txn, fewer for large
values, several at once; --db-mb: as many keys as fill that many MB; --random: values that do
not compress), then times, best of --runs:
  backup:  take_backup (snapshot save, gzip, store write with checksums) against
           `etcdctl snapshot save` + `gzip` (level 6, as Go's default); target ratio <= 1.2
  restore: fetch_backup + restore_data_dir + etcd start until healthy against
           `gunzip` + `snapshot restore` + start until healthy.
The peak RSS growth of this process (which runs take_backup and fetch_backup as the daemon does)
is printed beside each, and a last line holds every figure as JSON.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from etcd_helpers import START_TIMEOUT, client_url, launch, peer_url, running  # noqa: E402
from figures import Figure, Skipped  # noqa: E402

from etcdmgr.backup import fetch_backup, restore_data_dir, take_backup  # noqa: E402
from etcdmgr.etcd.client import EtcdClient  # noqa: E402
from etcdmgr.etcd.process import EtcdProcess  # noqa: E402
from etcdmgr.etcd.snapshot import snapshot_restore  # noqa: E402
from etcdmgr.etcd.versions import EtcdBinaries, find_binaries, version_key  # noqa: E402
from etcdmgr.store import FileStore  # noqa: E402

TXN_OPS = 128  # etcd's default --max-txn-ops
TXN_BYTES = 1 << 20  # below etcd's default --max-request-bytes (1.5 MiB)


def load(endpoint: str, version: str, keys: int, value_size: int = 100, random: bool = False) -> None:
    """Put `keys` keys of `value_size` B values (random bytes, or "x"s) through the JSON gateway."""
    prefix = "/v3beta" if version_key(version) < (3, 4, 0) else "/v3"
    fixed = base64.b64encode(b"x" * value_size).decode()
    per_txn = max(1, min(TXN_OPS, TXN_BYTES // value_size))

    def txn(start: int) -> None:
        ops = [
            {
                "requestPut": {
                    "key": base64.b64encode(f"bench/{i:08d}".encode()).decode(),
                    "value": base64.b64encode(os.urandom(value_size)).decode() if random else fixed,
                }
            }
            for i in range(start, min(start + per_txn, keys))
        ]
        req = urllib.request.Request(
            f"{endpoint}{prefix}/kv/txn", data=json.dumps({"success": ops}).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(txn, range(0, keys, per_txn)))


def reset_peak_rss() -> None:
    """Make VmHWM start again from the current RSS (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def best(runs: int, fn: Callable[[int], Awaitable[None]]) -> float:
    times = []
    for run in range(runs):
        started = time.perf_counter()
        await fn(run)
        times.append(time.perf_counter() - started)
    return min(times)


async def start_healthy(binaries: EtcdBinaries, root: Path, ip: str, data_prepared: Path) -> None:
    member = launch(binaries, root, "r1", ip, token="bench")
    assert member.data_dir == data_prepared
    async with await EtcdProcess.start(member, root) as proc:
        with trio.fail_after(START_TIMEOUT):
            await proc.wait_healthy(EtcdClient(member.advertise_client_urls, binaries))


async def run(args: argparse.Namespace) -> dict[str, float]:
    binaries = find_binaries(args.version)
    if binaries is None:
        raise Skipped(f"etcd {args.version} is not installed")
    keys = args.db_mb * 1_000_000 // args.value_size if args.db_mb else args.keys
    ip, restore_ip, runs = args.ip, args.restore_ip, args.runs
    tmp = Path(tempfile.mkdtemp(prefix="etcdmgr-bench-", dir=args.tmp))
    store = FileStore(tmp / "store", f"file://{tmp / 'store'}")
    client = EtcdClient([client_url(ip)], binaries)
    names: list[str] = []
    figures: dict[str, float] = {}
    try:
        async with running(launch(binaries, tmp / "src", "m1", ip)):
            started = time.perf_counter()
            await trio.to_thread.run_sync(
                load, client_url(ip), args.version, keys, args.value_size, args.random
            )
            status = await client.endpoint_status(client_url(ip))
            figures["db_mb"] = round(status.db_size / 1e6, 1)
            print(
                f"etcd {args.version}: loaded {keys} keys of {args.value_size} B"
                f"{' random' if args.random else ''} in {time.perf_counter() - started:.1f} s, "
                f"db {status.db_size / 1e6:.1f} MB; load average {os.getloadavg()[0]:.2f}",
                flush=True,
            )

            saves: list[float] = []

            async def raw_backup(run: int) -> None:
                snap = tmp / f"raw-{run}.db"
                started = time.perf_counter()
                await client.snapshot_save(snap, client_url(ip))
                saves.append(time.perf_counter() - started)
                await trio.run_process(["gzip", "-6", "-f", str(snap)])

            async def our_backup(run: int) -> None:
                result = await take_backup(
                    client, client_url(ip), store, None, args.version, tmp, with_v2=False
                )
                names.append(result.name)

            raw = await best(runs, raw_backup)
            base = rss_mb()
            reset_peak_rss()
            ours = await best(runs, our_backup)
            figures["backup_rss_growth_mb"] = round(peak_rss_mb() - base, 1)
        raw_size = (tmp / "raw-0.db.gz").stat().st_size
        our_size = sum(f.stat().st_size for f in (tmp / "store" / names[0]).glob("*.gz"))
        figures |= {
            "backup_s": round(ours, 2),
            "backup_raw_s": round(raw, 2),
            "snapshot_save_s": round(min(saves), 2),
            "backup_ratio": round(ours / raw, 2),
            "backup_gz_mb": round(our_size / 1e6, 1),
            "backup_raw_gz_mb": round(raw_size / 1e6, 1),
        }
        print(
            f"backup:  snapshot save ({min(saves):.2f} s) + gzip -6 {raw:.2f} s ({raw_size / 1e6:.1f} MB) | "
            f"take_backup {ours:.2f} s "
            f"({our_size / 1e6:.1f} MB) | ratio {ours / raw:.2f} | RSS +{figures['backup_rss_growth_mb']} MB; "
            f"load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )

        async def raw_restore(run: int) -> None:
            root = tmp / f"raw-restore-{run}"
            db = tmp / f"raw-{run}.db"
            await trio.run_process(["gzip", "-d", "-k", "-f", str(db) + ".gz"])
            data = root / "r1" / "data"
            await snapshot_restore(
                binaries, db, data, "r1", {"r1": [peer_url(restore_ip)]}, "bench", [peer_url(restore_ip)]
            )
            await start_healthy(binaries, root, restore_ip, data)
            db.unlink()
            shutil.rmtree(root)

        async def our_restore(run: int) -> None:
            root = tmp / f"restore-{run}"
            fetched = await fetch_backup(store, names[run], root / "fetch")
            data = root / "r1" / "data"
            await restore_data_dir(
                binaries, fetched, data, "r1", {"r1": [peer_url(restore_ip)]}, "bench", [peer_url(restore_ip)]
            )
            await start_healthy(binaries, root, restore_ip, data)
            shutil.rmtree(root)

        raw = await best(runs, raw_restore)
        base = rss_mb()
        reset_peak_rss()
        ours = await best(runs, our_restore)
        figures |= {
            "restore_s": round(ours, 2),
            "restore_raw_s": round(raw, 2),
            "restore_ratio": round(ours / raw, 2),
            "restore_rss_growth_mb": round(peak_rss_mb() - base, 1),
        }
        print(
            f"restore: gunzip + snapshot restore + start {raw:.2f} s | fetch + restore_data_dir + start "
            f"{ours:.2f} s | ratio {ours / raw:.2f} | RSS +{figures['restore_rss_growth_mb']} MB; "
            f"load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return figures


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", default="3.5.30")
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--db-mb", type=int, default=0, help="load this many MB of values instead of --keys")
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--random", action="store_true", help="values of random bytes (incompressible)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--ip", default="127.0.78.1")
    p.add_argument("--restore-ip", default="127.0.78.2")
    p.add_argument("--tmp", default=None, help="folder for the data (default: the system's temp folder)")
    return p


def as_figures(args: argparse.Namespace, found: dict[str, float]) -> list[Figure]:
    what = (
        f"{found['db_mb']:.0f} MB db of random {args.value_size} B values"
        if args.random
        else f"{args.db_mb * 1_000_000 // args.value_size if args.db_mb else args.keys} keys x {args.value_size} B"
    ) + f", etcd {args.version}"
    return [
        Figure(f"backup, {what} (raw: snapshot save + gzip -6)", found["backup_s"], raw=found["backup_raw_s"],
               target=1.2 * found["backup_raw_s"], target_text="<= 1.2 x raw"),
        Figure(f"restore to healthy, {what} (raw: gunzip + snapshot restore + start)", found["restore_s"],
               raw=found["restore_raw_s"], target=1.5 * found["restore_raw_s"], target_text="<= 1.5 x raw"),
        Figure(f"backup: RSS growth of the process taking it, {what}", found["backup_rss_growth_mb"], unit="MB",
               target=100.0, target_text="<= 100 MB"),
        Figure(f"restore: RSS growth of the process fetching it, {what}", found["restore_rss_growth_mb"],
               unit="MB", target=100.0, target_text="<= 100 MB"),
    ]  # fmt: skip


def figures(quick: bool) -> list[Figure]:
    """For benchmarks/run_all.py: 100k small keys (20k quick); full runs add a 100 MB database
    of incompressible values (1 GB: run this script with --db-mb 1000 --value-size 65536 --random)."""
    found: list[Figure] = []
    cases = [["--keys", "20000", "--runs", "1"]] if quick else [[], ["--db-mb", "100", "--value-size", "65536", "--random"]]
    for case in cases:
        args = parser().parse_args(case)
        found += as_figures(args, trio.run(run, args))
    return found


def main(argv: list[str] | None = None) -> int:
    found = trio.run(run, parser().parse_args(argv))
    print(json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
