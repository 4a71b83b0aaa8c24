#!/usr/bin/env python3
"""The nemesis soak: real daemons under acknowledged writes, checked reads and seeded faults.

Usage: python3 benchmarks/soak.py --minutes M --seed S [--nodes 3|5] [--keep] [--disk 256m]

Needs root (a tmpfs for the full-disk fault, cgroups and nftables for partitions: `nft` from
Debian's nftables) and etcd 3.4.23 and 3.5 (3.3.25 for the logical detour) under /opt. What it
does and checks: tests/soak_run.py. Prints one line per step and finding; the last line is the
figures as JSON. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

try:
    import trio  # noqa: F401  (the daemons run under this interpreter)
except ImportError:
    if VENV_PYTHON.exists() and Path(sys.executable) != VENV_PYTHON:
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), *sys.argv])
    raise SystemExit("needs the project's virtualenv (scripts/test --fast makes .venv)") from None

sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from figures import Figure, Skipped  # noqa: E402
from soak_run import Soak, SoakConfig, targets_missed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--nodes", type=int, choices=(3, 5), default=3)
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's folder (logs, store) when all is well"
    )
    parser.add_argument("--disk", default="256m", help="size of the last node's tmpfs data dir")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix=f"etcdmgr-soak-{args.seed}-"))
    config = SoakConfig(root / "cluster", args.minutes, args.seed, args.nodes, disk=args.disk)
    soak = Soak(config, out=lambda s: print(s, flush=True))
    result = soak.run()
    missed = targets_missed(result)
    for name in missed:
        print(f"MISSED: {name}", flush=True)
    if missed or soak.findings or args.keep:
        print(f"logs and store kept in {root}", flush=True)
    else:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result), flush=True)
    return 1 if missed else 0


SOAK_MINUTES = 10  # as run by benchmarks/run_all.py
SOAK_FIGURES = {  # result key -> (figure, target, higher is better)
    "lost": ("soak: acknowledged writes lost", 0, False),
    "stale_reads": ("soak: stale reads", 0, False),
    "max_serving_clusters": ("soak: clusters serving at once", 1, False),
    "healthy_removals": ("soak: healthy members removed", 0, False),
    "backup_gaps": ("soak: gaps over 2 x the backup interval", 0, False),
    "availability": ("soak: availability", 0.99, True),
    "max_unavailable_s": ("soak: longest unavailability, s", 10, False),
    "not_settled": ("soak: steps not whole again", 0, False),
}


def figures(quick: bool) -> list[Figure]:
    if quick:
        raise Skipped(f"a soak takes {SOAK_MINUTES} minutes; not in --quick")
    if os.geteuid() != 0:
        raise Skipped("needs root (tmpfs, cgroups, nftables)")
    root = Path(tempfile.mkdtemp(prefix="etcdmgr-soak-1-"))
    result = Soak(SoakConfig(root / "cluster", SOAK_MINUTES, 1, 3), out=lambda s: print(s, flush=True)).run()
    shutil.rmtree(root, ignore_errors=True)
    return [
        Figure(name, float(result[key]), "", target=target, higher_is_better=higher,
               target_text=f"{'>=' if higher else '<='} {target:g}")
        for key, (name, target, higher) in SOAK_FIGURES.items()
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
