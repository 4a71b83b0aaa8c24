#!/usr/bin/env python3
"""How long `ctl restore-backup` takes on a 3-member cluster, against a bare etcd restore.

Usage: python3 benchmarks/restore.py [--keys 100000] [--block 127.0.95]
                                     [--db-mb MB [--value-size BYTES] [--random]] [--backup-interval 5s]

Three daemons of dist/etcdmgr.pyz on <block>.1-3 (tests/harness.py's Cluster) with
--backup-interval=5s run etcd 3.5.30. --keys keys of 100-byte values (~18 MB db at 100k) are
loaded through the v3 JSON gateway (100 puts per txn, fewer for large values, several at once;
--db-mb: as many keys of --value-size as fill that many MB; --random: values that do not
compress; a large database wants a longer --backup-interval, as each backup is kept). Once a
backup taken after the load is listed:
  ours   `ctl restore-backup NAME` until every member serves all the keys on its client URL
         (quarantine lifted) and the three are healthy
  raw    `etcdutl snapshot restore` of the same snapshot + one etcd start until /health is true
         on <block>.9 (gunzip shown apart)
Target: ours <= 2 x raw + 2 s. The last line holds the figures as JSON.

Builds dist/etcdmgr.pyz when stale. Every process started here is stopped by pid.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from figures import Figure, Skipped  # noqa: E402
from harness import Cluster, http, wait_for  # noqa: E402

from etcdmgr.etcd.versions import EtcdBinaries, find_binaries  # noqa: E402

PYZ = ROOT / "dist" / "etcdmgr.pyz"
VERSION = "3.5.30"
TXN_PUTS = 100
TXN_BYTES = 1 << 20  # below etcd's default --max-request-bytes (1.5 MiB)
PREFIX = "bench/"
SENTINEL = "after-backup"


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def post(url: str, body: dict[str, object], timeout: float = 30) -> dict[str, object]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        result: dict[str, object] = json.loads(resp.read())
        return result


def load(urls: list[str], keys: int, value_size: int = 100, random: bool = False) -> None:
    fixed = b64(b"x" * value_size)
    per_txn = max(1, min(TXN_PUTS, TXN_BYTES // value_size))

    def txn(start: int) -> None:
        ops = [
            {"requestPut": {"key": b64(f"{PREFIX}{i:08d}"), "value": b64(os.urandom(value_size)) if random else fixed}}
            for i in range(start, min(start + per_txn, keys))
        ]
        post(f"{urls[start // per_txn % len(urls)]}/v3/kv/txn", {"success": ops}, timeout=120)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(txn, range(0, keys, per_txn)))


def count(url: str) -> int:
    # range_end "bench0" is the prefix "bench/" plus one: every key under it.
    body = {"key": b64(PREFIX), "range_end": b64("bench0"), "count_only": True}
    return int(str(post(f"{url}/v3/kv/range", body, timeout=5).get("count", 0)))


def backups(c: Cluster) -> list[str]:
    return c.ctl("list-backups").stdout.split()


def backup_after(c: Cluster, when: datetime) -> str:
    """The first backup whose name (its UTC second) is later than `when`: it holds every key."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return wait_for(
        "a backup after the load", lambda: next((b for b in backups(c) if b[:20] > stamp), None), 300
    )


def has_key(url: str, key: str) -> bool:
    return "kvs" in post(f"{url}/v3/kv/range", {"key": b64(key)}, timeout=5)


def ours(c: Cluster, name: str, keys: int) -> float:
    # Written after the backup, so its absence tells the restored cluster from the old one.
    post(f"{c[1].client_url}/v3/kv/put", {"key": b64(SENTINEL), "value": b64("1")})
    for d in c.daemons:
        assert count(d.client_url) == keys and has_key(d.client_url, SENTINEL)
    started = time.monotonic()
    c.ctl("restore-backup", name)

    def serving() -> bool:
        return all(count(d.client_url) == keys and not has_key(d.client_url, SENTINEL) for d in c.daemons)

    wait_for("every member serving the restored keys", serving, timeout=300, interval=0.05)
    c.wait_members(3, timeout=60)
    took = time.monotonic() - started
    if c.ctl("list-commands").stdout.strip():
        raise RuntimeError("the restore-backup command is still queued")
    return took


def raw(binaries: EtcdBinaries, snapshot_gz: Path, tmp: Path, ip: str) -> tuple[float, float, float]:
    """Seconds of gunzip, of `etcdutl snapshot restore`, and of one etcd start until healthy."""
    db = tmp / "raw.db"
    started = time.monotonic()
    with gzip.open(snapshot_gz) as src, db.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    gunzipped = time.monotonic()
    peer, client, data = f"http://{ip}:2380", f"http://{ip}:4001", tmp / "raw-data"
    cluster = ["--name=r1", f"--initial-cluster=r1={peer}", "--initial-cluster-token=raw"]
    assert binaries.etcdutl is not None  # 3.5 ships it
    subprocess.run(
        [str(binaries.etcdutl), "snapshot", "restore", str(db), f"--data-dir={data}", *cluster,
         f"--initial-advertise-peer-urls={peer}"],
        check=True, capture_output=True,
    )  # fmt: skip
    restored = time.monotonic()
    with (tmp / "raw-etcd.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(binaries.etcd), f"--data-dir={data}", *cluster, f"--listen-peer-urls={peer}",
             f"--initial-advertise-peer-urls={peer}", f"--listen-client-urls={client}",
             f"--advertise-client-urls={client}", "--initial-cluster-state=new"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        wait_for("raw etcd healthy", lambda: http("GET", f"{client}/health", timeout=1).get("health") == "true",
                 timeout=60, interval=0.02)  # fmt: skip
        healthy = time.monotonic()
        if count(client) == 0:
            raise RuntimeError("the raw restore holds no keys")
    finally:
        proc.terminate()
        proc.wait(30)
    return gunzipped - started, restored - gunzipped, healthy - restored


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=100_000, help="keys to load (default: %(default)s)")
    parser.add_argument("--block", default="127.0.95", help="loopback /24 prefix (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs) afterwards")
    parser.add_argument("--db-mb", type=int, default=0, help="load this many MB of values instead of --keys")
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--random", action="store_true", help="values of random bytes (incompressible)")
    parser.add_argument("--backup-interval", default="5s")
    args = parser.parse_args(argv)
    if args.db_mb:
        args.keys = args.db_mb * 1_000_000 // args.value_size
    binaries = find_binaries(VERSION)
    if binaries is None:
        raise Skipped(f"etcd {VERSION} is not installed")
    subprocess.run([sys.executable, str(ROOT / "build_zipapp.py")], check=True, capture_output=True)

    tmp = Path(tempfile.mkdtemp(prefix="etcdmgr-bench-"))
    c = Cluster(tmp / "cluster", 3, command=[str(PYZ)], block=args.block, extra_args=[f"--backup-interval={args.backup_interval}"])
    try:
        c.configure(3, VERSION)
        c.start()
        c.wait_members(3, timeout=90)
        started = time.monotonic()
        load([d.client_url for d in c.daemons], args.keys, args.value_size, args.random)
        loaded_at = datetime.now(UTC)
        print(f"loaded {args.keys} keys in {time.monotonic() - started:.1f} s", flush=True)
        name = backup_after(c, loaded_at)
        snapshot_gz = c.root / "backups" / "test" / name / "etcd.backup.gz"
        print(f"backup {name}: {snapshot_gz.stat().st_size / 1e6:.1f} MB gzipped", flush=True)
        took = ours(c, name, args.keys)
    except Exception:
        print(c.logs(), file=sys.stderr)
        raise
    finally:
        c.stop_all()
    try:
        # After the cluster is stopped, so the bare etcd has the machine to itself.
        gunzip_s, restore_s, start_s = raw(binaries, snapshot_gz, tmp, f"{args.block}.9")
    finally:
        if args.keep:
            print(f"logs: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    bare = restore_s + start_s
    target = 2 * bare + 2
    print(f"raw      etcdutl snapshot restore {restore_s:.2f} s + etcd start to healthy {start_s:.2f} s = {bare:.2f} s"
          f" (gunzip apart: {gunzip_s:.2f} s)", flush=True)  # fmt: skip
    print(f"ours     ctl restore-backup -> 3 members serving {args.keys} keys: {took:.2f} s; ratio {took / bare:.2f}; "
          f"target <= 2 x raw + 2 s = {target:.2f} s: {'OK' if took <= target else 'MISSED'}; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    found = {"keys": args.keys, "restore_s": round(took, 2), "raw_s": round(bare, 2),
               "raw_gunzip_s": round(gunzip_s, 2), "ratio": round(took / bare, 2)}  # fmt: skip
    print(json.dumps(found), flush=True)
    FOUND.append(Figure(f"restore-backup -> 3 members serving {args.keys} keys (raw: one member)", took, raw=bare,
                        target=target, target_text="<= 2 x raw + 2 s"))  # fmt: skip
    return 0


def figures(quick: bool) -> list[Figure]:
    main(["--keys", "20000" if quick else "100000"])
    return FOUND


FOUND: list[Figure] = []  # what this run measured, for benchmarks/run_all.py


if __name__ == "__main__":
    raise SystemExit(main())
