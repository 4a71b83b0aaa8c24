#!/usr/bin/env python3
"""Requests per hour that a settled 3-node cluster makes to its S3 store, by kind.

Usage: python3 benchmarks/store_requests.py [--minutes 5] [--backup-minutes 2] [--block 127.0.96]

Three daemons (tests/harness.py's Cluster, etcd 3.5.30, insecure on loopback) keep their backup
store and discovery in S3 on moto's server, with the daemon's default timing (--cycle-interval
10s, --discovery-poll-interval 60s, --backup-interval 15m). Once the cluster has three healthy
members and has settled for a minute, every request moto logs for --minutes is counted by kind
(method and object area) and scaled to an hour. The daemons are then restarted with a backup
every 20 s for --backup-minutes, to count what one backup costs (its objects, and the two
listings that pick its name); that is scaled to a backup every 15 minutes. The retention's
hourly deletes are added as computed for steady operation (3 backups expire an hour, 3 requests
each). Target: at most 1,500 requests an hour in all.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from figures import Figure, Skipped  # noqa: E402
from harness import Cluster  # noqa: E402
from object_servers import BUCKET, start_moto, unique_prefix  # noqa: E402

from etcdmgr.etcd.versions import find_binaries  # noqa: E402

VERSION = "3.5.30"
RETENTION_PER_HOUR = 3 * 3  # steady state: 3 backups expire an hour; LIST + DELETE meta + DELETE rest
_LINE = re.compile(r'"(?:\x1b\[[0-9;]*m)?(GET|PUT|POST|DELETE|HEAD) (\S+) HTTP')
_BACKUP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ-\d{6}")


def kind_of(method: str, target: str, prefix: str) -> str:
    """'LIST control/', 'GET discovery record', 'PUT backup object', ... for one request."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    path = unquote(parts.path).removeprefix(f"/{BUCKET}/").removeprefix(f"/{BUCKET}")
    if method == "GET" and "list-type" in query:
        listed = query.get("prefix", [""])[0].removeprefix(f"{prefix}/")
        if listed.startswith("discovery"):
            return "LIST discovery"
        if listed.startswith("backups/control"):
            return "LIST control/"
        if listed.rstrip("/") == "backups":
            return "LIST whole store"
        return "LIST backup folder"
    key = path.removeprefix(f"{prefix}/")
    if key.startswith("discovery/"):
        area = "discovery record"
    elif key.startswith("backups/control/etcdmgr-probe"):
        area = "probe"
    elif key.startswith("backups/control/"):
        area = "control object"
    elif _BACKUP.match(key.removeprefix("backups/")):
        area = "backup object"
    else:
        area = "other"
    if method == "POST" and "delete" in query:
        return "DELETE (bulk) backup object"
    if method == "POST" or (method == "PUT" and "partNumber" in query):
        return f"{method} multipart {area}"
    return f"{method} {area}"


def count(log: Path, start: int, prefix: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    with log.open("rb") as f:
        f.seek(start)
        for raw in f:
            m = _LINE.search(raw.decode(errors="replace"))
            if m:
                counts[kind_of(m.group(1), m.group(2), prefix)] += 1
    return counts


def restart(c: Cluster, store: str, discovery: str, backup_interval: str) -> None:
    c.stop_all()
    timing = ("--discovery-poll-interval=", "--cycle-interval=", "--backup-store=", "--discovery-store=")
    for d in c.daemons:
        d.args = [a for a in d.args if not a.startswith((*timing, "--backup-interval="))] + [
            f"--backup-store={store}",
            f"--discovery-store={discovery}",
            f"--backup-interval={backup_interval}",
        ]
    c.start()
    c.wait_members(3, timeout=240)


def window(c: Cluster, moto_log: Path, prefix: str, minutes: float) -> tuple[Counter[str], int]:
    """Requests by kind during ``minutes``, and how many backups were taken meanwhile."""
    before = len(c.ctl("list-backups").stdout.split())
    start = moto_log.stat().st_size
    time.sleep(minutes * 60)
    counts = count(moto_log, start, prefix)
    return counts, len(c.ctl("list-backups").stdout.split()) - before


def main(minutes: float, backup_minutes: float, block: str) -> list[Figure]:
    if find_binaries(VERSION) is None:
        raise Skipped(f"etcd {VERSION} is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="etcdmgr-requests-"))
    moto = start_moto(tmp)
    os.environ.update(moto.env)  # the daemons and ctl inherit them
    prefix = unique_prefix()
    store, discovery = f"s3://{BUCKET}/{prefix}/backups", f"s3://{BUCKET}/{prefix}/discovery"
    c = Cluster(tmp / "cluster", 3, block=block)
    c.store_url = store
    try:
        c.configure(3, VERSION)
        restart(c, store, discovery, "15m")
        print("3 healthy members; settling for 60 s", flush=True)
        time.sleep(60)
        steady, steady_backups = window(c, moto.log, prefix, minutes)
        print(f"steady window done ({steady_backups} backups in it); now a backup every 20 s", flush=True)
        restart(c, store, discovery, "20s")
        time.sleep(30)
        busy, backups = window(c, moto.log, prefix, backup_minutes)
    finally:
        c.stop_all()
        moto.stop()
    per_hour = 60 / minutes
    own = sum(v for k, v in busy.items() if "backup object" in k or k == "LIST backup folder")
    listings = busy["LIST whole store"]
    per_backup = own / max(backups, 1) + 2
    print(f"\nsteady window {minutes:g} min; requests per hour by kind:")
    rows = sorted(((v * per_hour, k) for k, v in steady.items()), reverse=True)
    rows.append((per_backup * 4, f"backups (every 15 min, {per_backup:.1f} requests each)"))
    rows.append((RETENTION_PER_HOUR, "retention (hourly; 3 expired backups x 3 requests, computed)"))
    for n, kind in rows:
        print(f"  {n:7.0f}  {kind}")
    print(f"  {sum(n for n, _ in rows):7.0f}  in all (target <= 1500)")
    print(
        f"backup window {backup_minutes:g} min: {backups} backups, {own} requests on their objects, "
        f"{listings} listings of the whole store (2 per backup picking its name, the rest the cache)"
    )
    total = sum(n for n, _ in rows)
    return [Figure("S3 requests per hour, settled 3-node cluster", total, "requests/h", target=1500,
                   target_text="<= 1500")]  # fmt: skip


def figures(quick: bool) -> list[Figure]:
    if quick:
        raise Skipped("counts requests for 7 minutes and more; not in --quick")
    return main(5.0, 2.0, "127.0.96")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--backup-minutes", type=float, default=2.0)
    p.add_argument("--block", default="127.0.96")
    a = p.parse_args()
    main(a.minutes, a.backup_minutes, a.block)
