#!/usr/bin/env python3
"""Backup and restore speed against the bare etcd tools, with 100k keys x 100 B (~18 MB db).

Usage: python3 benchmarks/backup.py [--version 3.5.30] [--keys 100000] [--runs 3] [--ip 127.0.78.1]

Loads the keys into a single etcd through the v3 JSON gateway (128 puts per txn, several at
once), then times, best of --runs:
  backup:  take_backup (snapshot save, gzip, store write with checksums) against
           `etcdctl snapshot save` + `gzip` (level 6, as Go's default); target ratio <= 1.2
  restore: fetch_backup + restore_data_dir + etcd start until healthy against
           `gunzip` + `snapshot restore` + start until healthy.
"""

from __future__ import annotations

import argparse
import base64
import json
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


def load(endpoint: str, version: str, keys: int) -> None:
    """Put `keys` keys of 100 B values through the JSON gateway."""
    prefix = "/v3beta" if version_key(version) < (3, 4, 0) else "/v3"
    value = base64.b64encode(b"x" * 100).decode()

    def txn(start: int) -> None:
        ops = [
            {"requestPut": {"key": base64.b64encode(f"bench/{i:08d}".encode()).decode(), "value": value}}
            for i in range(start, min(start + TXN_OPS, keys))
        ]
        req = urllib.request.Request(
            f"{endpoint}{prefix}/kv/txn", data=json.dumps({"success": ops}).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(txn, range(0, keys, TXN_OPS)))


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


async def main(version: str, keys: int, runs: int, ip: str, restore_ip: str) -> list[Figure]:
    binaries = find_binaries(version)
    if binaries is None:
        raise Skipped(f"etcd {version} is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="etcdmgr-bench-"))
    store = FileStore(tmp / "store", f"file://{tmp / 'store'}")
    client = EtcdClient([client_url(ip)], binaries)
    names: list[str] = []
    async with running(launch(binaries, tmp / "src", "m1", ip)):
        started = time.perf_counter()
        await trio.to_thread.run_sync(load, client_url(ip), version, keys)
        status = await client.endpoint_status(client_url(ip))
        print(
            f"etcd {version}: loaded {keys} keys in {time.perf_counter() - started:.1f} s, db {status.db_size / 1e6:.1f} MB"
        )

        async def raw_backup(run: int) -> None:
            snap = tmp / f"raw-{run}.db"
            await client.snapshot_save(snap, client_url(ip))
            await trio.run_process(["gzip", "-6", "-f", str(snap)])

        async def our_backup(run: int) -> None:
            result = await take_backup(client, client_url(ip), store, None, version, tmp, with_v2=False)
            names.append(result.name)

        raw = await best(runs, raw_backup)
        ours = await best(runs, our_backup)
    size = (tmp / "raw-0.db.gz").stat().st_size
    what = f"{keys} keys x 100 B, etcd {version}"
    found = [Figure(f"backup, {what} (raw: snapshot save + gzip -6)", ours, raw=raw, target=1.2 * raw,
                    target_text="<= 1.2 x raw")]  # fmt: skip
    print(
        f"backup:  snapshot save + gzip {raw:.2f} s | take_backup {ours:.2f} s | ratio {ours / raw:.2f} ({size / 1e6:.1f} MB gz)"
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

    async def our_restore(run: int) -> None:
        root = tmp / f"restore-{run}"
        fetched = await fetch_backup(store, names[run], root / "fetch")
        data = root / "r1" / "data"
        await restore_data_dir(
            binaries, fetched, data, "r1", {"r1": [peer_url(restore_ip)]}, "bench", [peer_url(restore_ip)]
        )
        await start_healthy(binaries, root, restore_ip, data)

    raw = await best(runs, raw_restore)
    ours = await best(runs, our_restore)
    print(
        f"restore: gunzip + snapshot restore + start {raw:.2f} s | fetch + restore_data_dir + start {ours:.2f} s | ratio {ours / raw:.2f}"
    )
    shutil.rmtree(tmp, ignore_errors=True)
    found.append(Figure(f"restore to healthy, {what} (raw: gunzip + snapshot restore + start)", ours, raw=raw))
    return found


def figures(quick: bool) -> list[Figure]:
    return trio.run(main, "3.5.30", 20_000 if quick else 100_000, 1 if quick else 3, "127.0.78.1", "127.0.78.2")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", default="3.5.30")
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--ip", default="127.0.78.1")
    p.add_argument("--restore-ip", default="127.0.78.2")
    a = p.parse_args()
    trio.run(main, a.version, a.keys, a.runs, a.ip, a.restore_ip)
