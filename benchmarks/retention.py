#!/usr/bin/env python3
"""One retention pass over a file:// store of many backups, and what it costs the event loop.

Usage: python3 benchmarks/retention.py [--backups 2000] [--tmp DIR]

Makes --backups backups (meta, checksums and a 1 KiB data file each), one every 30 minutes back
from now, so that the default retention expires most of the old ones, then times, in the daemon's
way (`Pruner.run`, woken as after a backup):
  a pass deleting many   the first pass (at most half of the backups go; warned as a clock jump)
  a steady pass          a pass once nothing more expires (it still lists them all)
  raw                    `rm -rf` of the folders the first pass deleted, recreated
and the longest the event loop was late for a 10 ms tick meanwhile (the leader's decisions run
on it; target: a pass <= 2 s, the loop never held up for longer than a store call's tick).
The last line holds the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from figures import Figure  # noqa: E402

from etcdmgr.backup import Pruner  # noqa: E402
from etcdmgr.store import FileStore  # noqa: E402
from etcdmgr.store.layout import CHECKSUMS_FILE, DATA_FILE, META_FILE  # noqa: E402
from etcdmgr.store.retention import Retention  # noqa: E402

STEP = timedelta(minutes=30)


def make_backups(root: Path, count: int, newest: datetime) -> list[str]:
    names = []
    for i in range(count):
        name = f"{(newest - i * STEP).strftime('%Y-%m-%dT%H:%M:%S')}Z-000001"
        folder = root / name
        folder.mkdir(parents=True)
        (folder / DATA_FILE).write_bytes(b"\0" * 1024)
        (folder / CHECKSUMS_FILE).write_text("")
        (folder / META_FILE).write_text('{\n  "etcdVersion": "3.5.30",\n  "timestamp": "1"\n}')
        names.append(name)
    return names


async def timed_pass(store: FileStore) -> tuple[float, float, int]:
    """(seconds of one pass run as the daemon runs it, the event loop's longest lateness, deleted)."""
    before = set(await store.list_backups())
    pruner = Pruner(store, Retention(), every=0.0)
    done = trio.Event()
    late = 0.0

    async def tick() -> None:
        nonlocal late
        while not done.is_set():
            at = trio.current_time()
            await trio.sleep(0.01)
            late = max(late, trio.current_time() - at - 0.01)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick)
        started = time.perf_counter()
        deleted = await pruner.after_backup()
        took = time.perf_counter() - started
        done.set()
    assert before - set(await store.list_backups()) == set(deleted)
    return took, late, len(deleted)


async def run(args: argparse.Namespace) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="etcdmgr-bench-", dir=args.tmp))
    figures: dict[str, float] = {"backups": args.backups}
    try:
        root = tmp / "store"
        store = FileStore(root, f"file://{root}")
        now = datetime.now(UTC)
        await trio.to_thread.run_sync(make_backups, root, args.backups, now)
        took, late, deleted = await timed_pass(store)
        figures |= {"pass_many_s": round(took, 2), "pass_many_deleted": deleted, "loop_late_ms": round(late * 1000)}
        print(f"a pass deleting many: {deleted} of {args.backups} in {took:.2f} s; the event loop at most "
              f"{late * 1000:.0f} ms late; load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip

        # Raw: the same folders made again and removed with rm -rf.
        gone = sorted(set(make_names(args.backups, now)) - {p.name for p in root.iterdir()})
        await trio.to_thread.run_sync(remake, root, gone)
        started = time.perf_counter()
        await trio.run_process(["rm", "-rf", *[str(root / n) for n in gone]])
        raw = time.perf_counter() - started
        figures["rm_rf_s"] = round(raw, 2)
        print(f"raw: rm -rf of those {len(gone)} folders {raw:.2f} s", flush=True)

        # Steady: once the passes have deleted what expired, a pass lists them all and deletes little.
        while (await timed_pass(store))[2]:
            pass
        took, late, deleted = await timed_pass(store)
        kept = len(await store.list_backups())
        figures |= {"pass_steady_s": round(took, 2), "pass_steady_backups": kept,
                    "loop_late_steady_ms": round(late * 1000)}  # fmt: skip
        print(f"a steady pass over {kept} backups: {deleted} deleted in {took:.2f} s; the event loop at most "
              f"{late * 1000:.0f} ms late", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return figures


def make_names(count: int, newest: datetime) -> list[str]:
    return [f"{(newest - i * STEP).strftime('%Y-%m-%dT%H:%M:%S')}Z-000001" for i in range(count)]


def remake(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).mkdir()
        for f in (DATA_FILE, CHECKSUMS_FILE, META_FILE):
            (root / name / f).write_bytes(b"x")
    subprocess.run(["sync"], check=False)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backups", type=int, default=2000)
    p.add_argument("--tmp", default=None)
    return p


def figures(quick: bool) -> list[Figure]:
    """For benchmarks/run_all.py (quick or not: it takes seconds)."""
    found = trio.run(run, parser().parse_args([]))
    n = found["backups"]
    return [
        Figure(f"retention pass deleting {found['pass_many_deleted']:.0f} of {n:.0f} backups (raw: rm -rf of them)",
               found["pass_many_s"], raw=found["rm_rf_s"], target=2.0, target_text="<= 2 s"),
        Figure(f"retention pass over {found['pass_steady_backups']:.0f} backups, nothing expired",
               found["pass_steady_s"], target=2.0, target_text="<= 2 s"),
        Figure("event loop held up during a retention pass", found["loop_late_ms"] / 1000),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    found = trio.run(run, parser().parse_args(argv))
    print(json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
