#!/usr/bin/env python3
"""How long an etcd version change of a 3-member cluster takes, and what clients notice.

Usage: python3 benchmarks/upgrade.py [--block 127.0.93] [--interval 0.1]

Three daemons of dist/etcdmgr.pyz on <block>.1-3 (tests/harness.py's Cluster). While the version
changes, a writer puts a new v2 key every --interval seconds, trying each member's client URL in
turn; a put counts as failed only when one retry (every member again) fails too.
  (a) rolling      3.4.23 -> 3.5.30 in place: seconds from `ctl configure-cluster` until every
                   member serves 3.5.30 and is healthy; failed puts (target 0)
  (b) logical      3.3.25 -> 3.5.30 (quarantine, backup, restore on the new version): downtime
                   (first failed put to the next successful one) and total seconds
Afterwards every acknowledged put must still be readable (lost puts: target 0).

Builds dist/etcdmgr.pyz when stale. Every process started here is stopped by pid.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from figures import Figure, Skipped  # noqa: E402
from harness import Cluster, http, wait_for  # noqa: E402

from etcdmgr.etcd.versions import find_binaries  # noqa: E402

PYZ = ROOT / "dist" / "etcdmgr.pyz"
PUT_TIMEOUT_S = 1.0
DOWNTIME_TARGET = 5.0  # of a logical change
FOUND: list[Figure] = []  # what this run measured, for benchmarks/run_all.py


@dataclass
class Writer:
    """Puts bench/<i> = <i> every `interval` seconds until stopped; records what each put did."""

    urls: list[str]
    interval: float
    acked: list[str] = field(default_factory=list)
    failed_at: list[float] = field(default_factory=list)
    ok_at: list[float] = field(default_factory=list)
    retried: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _put_once(self, key: str) -> bool:
        for url in self.urls:
            req = urllib.request.Request(
                f"{url}/v2/keys/bench/{key}", data=f"value={key}".encode(), method="PUT",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )  # fmt: skip
            try:
                with urllib.request.urlopen(req, timeout=PUT_TIMEOUT_S) as resp:
                    if resp.status in (200, 201):
                        return True
            except (OSError, ValueError):  # refused, quarantined, no leader, timed out: next member
                continue
        return False

    def _run(self) -> None:
        i = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            key = f"{i:06d}"
            at = time.monotonic()
            ok = self._put_once(key)
            if not ok:
                self.retried += 1
                ok = self._put_once(key)
            if ok:
                self.acked.append(key)
                self.ok_at.append(at)
            else:
                self.failed_at.append(at)
            i += 1
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def downtime(self) -> float:
        """First failed put to the next successful one (0 when none failed)."""
        if not self.failed_at:
            return 0.0
        first = self.failed_at[0]
        back = next((t for t in self.ok_at if t > first), None)
        if back is None:
            raise RuntimeError("no put succeeded after the first failure")
        return back - first


def served_versions(c: Cluster) -> set[str]:
    return {http("GET", f"{d.client_url}/version", timeout=2)["etcdserver"] for d in c.daemons}


def lost(c: Cluster, acked: list[str]) -> list[str]:
    """Acknowledged puts that the cluster no longer holds."""
    listing = http("GET", f"{c[1].client_url}/v2/keys/bench?recursive=true&quorum=true", timeout=10)
    held = {n["key"].rsplit("/", 1)[1]: n.get("value") for n in listing["node"].get("nodes", [])}
    return [k for k in acked if held.get(k) != k]


def change(c: Cluster, old: str, new: str, interval: float) -> tuple[Writer, float, list[str]]:
    c.configure(3, old)
    c.start()
    c.wait_members(3, timeout=90)
    w = Writer([d.client_url for d in c.daemons], interval)
    w.start()
    time.sleep(2)  # a baseline of good puts before the change
    started = time.monotonic()
    c.configure(3, new)
    try:
        wait_for(
            f"every member serving {new}", lambda: served_versions(c) == {new}, timeout=300, interval=0.1
        )
        c.wait_members(3, timeout=120)
    finally:
        total = time.monotonic() - started
        time.sleep(1)  # a tail of puts on the new version
        w.stop()
    return w, total, lost(c, w.acked)


def run(label: str, old: str, new: str, block: str, interval: float, keep: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="etcdmgr-bench-"))
    c = Cluster(tmp, 3, command=[str(PYZ)], block=block)
    try:
        w, total, missing = change(c, old, new, interval)
    except Exception:
        print(c.logs(), file=sys.stderr)
        raise
    finally:
        c.stop_all()
        if keep:
            print(f"logs: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    puts = len(w.acked) + len(w.failed_at)
    what = f"{label} {old} -> {new}"
    FOUND.append(Figure(f"{what}: total", total))
    FOUND.append(Figure(f"{what}: client downtime", w.downtime(), target=0.0 if label == "rolling" else DOWNTIME_TARGET,
                        target_text="0 s" if label == "rolling" else f"<= {DOWNTIME_TARGET:g} s"))
    FOUND.append(Figure(f"{what}: acknowledged puts lost", len(missing), "puts", target=0, target_text="0"))
    print(f"{label:<8} {old} -> {new}: total {total:6.2f} s; puts {puts}, failed {len(w.failed_at)} "
          f"(after one retry; {w.retried} needed a retry), downtime {w.downtime():.2f} s, "
          f"acknowledged puts lost {len(missing)} (target 0)", flush=True)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--block", default="127.0.93", help="loopback /24 prefix (default: %(default)s)")
    parser.add_argument(
        "--interval", type=float, default=0.1, help="seconds between puts (default: %(default)s)"
    )
    parser.add_argument("--only", choices=("rolling", "logical"), help="run one of the two")
    parser.add_argument("--keep", action="store_true", help="keep the temp folders (logs) afterwards")
    args = parser.parse_args(argv)
    for v in ("3.3.25", "3.4.23", "3.5.30"):
        if find_binaries(v) is None:
            raise Skipped(f"etcd {v} is not installed")
    subprocess.run([sys.executable, str(ROOT / "build_zipapp.py")], check=True, capture_output=True)
    if args.only in (None, "rolling"):
        # In place: one member at a time, so a quorum keeps serving; target 0 failed puts.
        run("rolling", "3.4.23", "3.5.30", f"{args.block}", args.interval, args.keep)
    if args.only in (None, "logical"):
        run("logical", "3.3.25", "3.5.30", f"{args.block.rsplit('.', 1)[0]}.{int(args.block.rsplit('.', 1)[1]) + 1}",
            args.interval, args.keep)  # fmt: skip
    return 0


def figures(quick: bool) -> list[Figure]:
    main([])
    return FOUND


if __name__ == "__main__":
    raise SystemExit(main())
