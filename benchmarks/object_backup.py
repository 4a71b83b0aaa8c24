#!/usr/bin/env python3
"""Backup and restore of a ~100 MB etcd database through S3 (moto's server on loopback) against
file://, with the peak memory of the process doing each.

Usage: python3 benchmarks/object_backup.py [--mb 100] [--version 3.5.30] [--ip 127.0.79.1]

Loads --mb MB of incompressible values (10 KB each) into one etcd, then runs each step in a
fresh child process (so its peak RSS, ru_maxrss, is its own), best of --runs:
  backup   take_backup: snapshot save, gzip, store write (multipart for S3) with checksums
  restore  fetch_backup (streamed download, checksum, gunzip) + restore_data_dir
and prints the S3 / file:// time ratio and each step's peak RSS (target: flat, under 100 MB).
etcd and moto are other processes: their memory is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from etcd_helpers import client_url, launch, peer_url, running  # noqa: E402
from figures import Figure, Skipped  # noqa: E402
from object_servers import BUCKET, start_moto, unique_prefix  # noqa: E402

from etcdmgr.backup import fetch_backup, restore_data_dir, take_backup  # noqa: E402
from etcdmgr.etcd.client import EtcdClient  # noqa: E402
from etcdmgr.etcd.versions import find_binaries  # noqa: E402
from etcdmgr.store import open_store  # noqa: E402

VALUE = 10_000
PER_TXN = 100  # 1 MB per request, under etcd's 1.5 MiB limit


def load(endpoint: str, megabytes: int) -> None:
    import base64

    count = megabytes * 1_000_000 // VALUE

    def txn(start: int) -> None:
        ops = [
            {
                "requestPut": {
                    "key": base64.b64encode(f"bench/{i:08d}".encode()).decode(),
                    "value": base64.b64encode(os.urandom(VALUE)).decode(),
                }
            }
            for i in range(start, min(start + PER_TXN, count))
        ]
        req = urllib.request.Request(
            f"{endpoint}/v3/kv/txn", data=json.dumps({"success": ops}).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(txn, range(0, count, PER_TXN)))


async def child(op: str, url: str, version: str, ip: str, work: Path, name: str) -> None:
    """One step in this process; prints {"seconds", "peak_rss_mb", "name"} as JSON."""
    binaries = find_binaries(version)
    assert binaries is not None
    store = open_store(url)
    started = time.perf_counter()
    if op == "backup":
        client = EtcdClient([client_url(ip)], binaries)
        result = await take_backup(client, client_url(ip), store, None, version, work, with_v2=False)
        name = result.name
    else:
        fetched = await fetch_backup(store, name, work / "fetch")
        data = work / "r1" / "data"
        restore_ip = ip.rsplit(".", 1)[0] + ".2"
        await restore_data_dir(
            binaries, fetched, data, "r1", {"r1": [peer_url(restore_ip)]}, "bench", [peer_url(restore_ip)]
        )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "name": name}))


def run_child(
    op: str, url: str, args: argparse.Namespace, work: Path, name: str, env: dict[str, str]
) -> dict[str, float | str]:
    work.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            op,
            "--url",
            url,
            "--version",
            args.version,
            "--ip",
            args.ip,
            "--work",
            str(work),
            "--name",
            name,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{op} on {url} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


async def main(args: argparse.Namespace) -> list[Figure]:
    binaries = find_binaries(args.version)
    if binaries is None:
        raise Skipped(f"etcd {args.version} is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="etcdmgr-objbench-"))
    moto = start_moto(tmp)
    env = {**os.environ, **moto.env}
    urls = {"file://": f"file://{tmp / 'store'}", "s3 (moto)": f"s3://{BUCKET}/{unique_prefix()}"}
    results: dict[tuple[str, str], dict[str, float | str]] = {}
    try:
        async with running(launch(binaries, tmp / "src", "m1", args.ip)):
            started = time.perf_counter()
            await trio.to_thread.run_sync(load, client_url(args.ip), args.mb)
            status = await EtcdClient([client_url(args.ip)], binaries).endpoint_status(client_url(args.ip))
            print(
                f"etcd {args.version}: loaded {args.mb} MB in {time.perf_counter() - started:.0f} s, "
                f"db {status.db_size / 1e6:.0f} MB"
            )
            for kind, url in urls.items():
                runs = [
                    run_child("backup", url, args, tmp / f"b-{kind[:2]}-{r}", "", env)
                    for r in range(args.runs)
                ]
                results[(kind, "backup")] = min(runs, key=lambda r: float(r["seconds"]))
                results[(kind, "backup")]["peak_rss_mb"] = max(float(r["peak_rss_mb"]) for r in runs)
        for kind, url in urls.items():
            name = str(results[(kind, "backup")]["name"])
            runs = [
                run_child("restore", url, args, tmp / f"r-{kind[:2]}-{r}", name, env)
                for r in range(args.runs)
            ]
            results[(kind, "restore")] = min(runs, key=lambda r: float(r["seconds"]))
            results[(kind, "restore")]["peak_rss_mb"] = max(float(r["peak_rss_mb"]) for r in runs)
        gz = next((tmp / "store").rglob("etcd.backup.gz")).stat().st_size
    finally:
        moto.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"backup file {gz / 1e6:.0f} MB gz; best of {args.runs}; peak RSS of the process doing the step")
    for step in ("backup", "restore"):
        f, s = results[("file://", step)], results[("s3 (moto)", step)]
        print(
            f"{step:8} file:// {float(f['seconds']):6.2f} s (peak {float(f['peak_rss_mb']):.0f} MB) | "
            f"s3 {float(s['seconds']):6.2f} s (peak {float(s['peak_rss_mb']):.0f} MB) | "
            f"ratio {float(s['seconds']) / float(f['seconds']):.2f}"
        )
    return [
        Figure(f"{step} of {args.mb} MB: {kind} {what}", float(results[(kind, step)][key]), unit,
               target=RSS_TARGET_MB if key == "peak_rss_mb" else None,
               target_text=f"<= {RSS_TARGET_MB} MB" if key == "peak_rss_mb" else "")
        for step in ("backup", "restore")
        for kind in ("file://", "s3 (moto)")
        for key, what, unit in (("seconds", "time", "s"), ("peak_rss_mb", "peak RSS", "MB"))
    ]  # fmt: skip


RSS_TARGET_MB = 100


def figures(quick: bool) -> list[Figure]:
    if quick:
        raise Skipped("loads 100 MB into etcd and keeps several copies on disk; not in --quick")
    args = argparse.Namespace(mb=100, version="3.5.30", runs=2, ip="127.0.79.1")
    return trio.run(main, args)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--version", default="3.5.30")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--ip", default="127.0.79.1")
    p.add_argument("--child", choices=["backup", "restore"])
    p.add_argument("--url")
    p.add_argument("--work")
    p.add_argument("--name", default="")
    a = p.parse_args()
    if a.child:
        trio.run(child, a.child, a.url, a.version, a.ip, Path(a.work), a.name)
    else:
        trio.run(main, a)
