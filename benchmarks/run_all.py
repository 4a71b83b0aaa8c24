#!/usr/bin/env python3
"""Run every benchmark in benchmarks/ and print one table of their figures.

Usage: python3 benchmarks/run_all.py [--quick] [--only NAME,...] [--timeout SECONDS]

Each benchmark module that exposes `figures(quick: bool) -> list[Figure]` (benchmarks/README.md)
runs in a child process of its own, one after the other (they share the machine's cores and
would skew each other). A benchmark that cannot run here or, with --quick, takes too long,
says so in one line and is left out. The table has one row per figure: ours, raw etcd doing the
same, the ratio, the target and OK/MISSED. The last line is one JSON object holding every figure,
the skipped benchmarks and the failed ones. Exits 1 when a target was missed or a benchmark
failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from figures import Figure, Skipped, figures_line  # noqa: E402

NOT_BENCHMARKS = {"run_all", "figures"}  # modules here that measure nothing themselves
MARK = "run_all: "  # prefix of the child's last line


def benchmark_names() -> list[str]:
    return sorted(
        p.stem for p in HERE.glob("*.py") if p.stem not in NOT_BENCHMARKS and not p.stem.startswith("_")
    )


def child(name: str, quick: bool) -> int:
    """In the child: import one benchmark, run it, print its figures (or why not) last."""
    module = importlib.import_module(name)
    run = getattr(module, "figures", None)
    if run is None:
        print(MARK + json.dumps({"skipped": "has no figures(quick) yet (see benchmarks/README.md)"}))
        return 0
    try:
        found: list[Figure] = run(quick)
    except Skipped as e:
        print(MARK + json.dumps({"skipped": str(e)}))
        return 0
    print(MARK + figures_line(found))
    return 0


def run_one(name: str, quick: bool, timeout: float) -> tuple[list[Figure], str | None, str | None]:
    """(figures, why skipped, why failed) of benchmark `name`, run in a child process whose
    own output passes through."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, *(["--quick"] if quick else [])]
    last = None
    # Its own process group: a benchmark stopped on timeout (or ^C) takes the daemons and etcds
    # it started with it, which its own clean-up would have stopped.
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True) as proc:
        timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:  # passed through as it comes: a long benchmark shows progress
                if line.startswith(MARK):
                    last = json.loads(line[len(MARK) :])
                else:
                    print(f"  {line}", end="", flush=True)
            returncode = proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            timer.cancel()
    if returncode == -signal.SIGKILL:
        return [], None, f"did not finish within {timeout:.0f} s"
    if returncode != 0 or last is None:
        return [], None, f"exited with code {returncode} (its error is above)"
    if "skipped" in last:
        return [], str(last["skipped"]), None
    return [Figure.from_json(f) for f in last["figures"]], None, None


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return (
        f"{value:.3g}{' ' + unit if unit else ''}"
        if abs(value) < 100
        else f"{value:.0f}{' ' + unit if unit else ''}"
    )


def table(rows: Sequence[tuple[str, Figure]]) -> str:
    header = ("benchmark", "figure", "ours", "raw", "ratio", "target", "")
    lines = [header]
    for name, f in rows:
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        target = f.target_text or ("-" if f.target is None else f"<= {_num(f.target, f.unit)}")
        if f.target is not None and "raw" in f.target_text:  # the bound worked out from raw
            target += f" ({_num(f.target, f.unit)})"
        verdict = {True: "OK", False: "MISSED", None: ""}[f.ok]
        lines.append((name, f.name, _num(f.ours, f.unit), _num(f.raw, f.unit), ratio, target, verdict))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="fewer runs; skip what takes minutes or much disk"
    )
    parser.add_argument("--only", help="comma-separated benchmark names (default: all)")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="per benchmark, s (default: %(default)s)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.quick)

    names = args.only.split(",") if args.only else benchmark_names()
    rows: list[tuple[str, Figure]] = []
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    for name in names:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            found, skip, failure = run_one(name, args.quick, args.timeout)
        except Exception as e:  # a bug here must not lose the figures of the others
            traceback.print_exc()
            found, skip, failure = [], None, f"{type(e).__name__}: {e}"
        took = time.monotonic() - started
        if skip:
            skipped[name] = skip
            print(f"== {name}: skipped: {skip}", flush=True)
        elif failure:
            failed[name] = failure
            print(f"== {name}: FAILED: {failure}", flush=True)
        else:
            print(f"== {name}: {len(found)} figures in {took:.0f} s", flush=True)
        rows += [(name, f) for f in found]

    print()
    print(table(rows))
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    for name, why in failed.items():
        print(f"FAILED {name}: {why}")
    print(json.dumps({"figures": [{"benchmark": n, **f.to_json()} for n, f in rows],
                      "skipped": skipped, "failed": failed}))  # fmt: skip
    return 1 if failed or any(f.ok is False for _, f in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
