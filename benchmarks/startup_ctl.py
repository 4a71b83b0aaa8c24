#!/usr/bin/env python3
"""Start-up time of the one-file executable: `version` and `ctl get`, cold and warm.

Usage: python3 benchmarks/startup_ctl.py [-n RUNS] [--pyz PATH] [--interpreter PYTHON]

Builds dist/etcdmgr.pyz when stale (unless --pyz is given) and runs it through its shebang,
with SHIV_ROOT in a temporary folder. Cold = first run after a fresh unpack (extract and
compile); warm = later runs. The floor is a bare `python3 -c pass` of the same interpreter;
the target for a warm `version` is 0.3 s, for a warm `ctl get` 0.15 s (it imports no trio).
Then the modules a warm `ctl get` spends most import time in (`python -X importtime`, one run),
and one JSON line of the figures (medians, seconds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from figures import Figure, figures_line  # noqa: E402

TARGET_S = 0.3
CTL_TARGET_S = 0.15
COLD_RUNS = 3
TOP_IMPORTS = 8


def timed(cmd: Sequence[str], shiv_root: Path) -> float:
    env = {**os.environ, "SHIV_ROOT": str(shiv_root)}
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        last_line = (done.stderr.strip().splitlines() or [""])[-1]
        raise RuntimeError(f"{' '.join(cmd[-2:])} exited {done.returncode}: {last_line}")
    return elapsed


def report(
    label: str, times: Sequence[float], floor: float | None = None, target: float | None = None
) -> float:
    median, best = statistics.median(times), min(times)
    line = f"{label:<24} median {median:.3f} s  min {best:.3f} s  ({len(times)} runs)"
    if floor is not None:
        line += f"  {median / floor:.1f}x interpreter start"
    if target is not None:
        line += f"  target <= {target} s: {'OK' if median <= target else 'MISSED'}"
    print(line, flush=True)
    return median


def top_imports(cmd: Sequence[str], shiv_root: Path) -> list[tuple[str, float]]:
    """The top-level imports of one run of `cmd` (python -X importtime) taking the most time."""
    env = {**os.environ, "SHIV_ROOT": str(shiv_root)}
    done = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, capture_output=True, text=True)
    found = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and not line.endswith("imported package"):
            _, cumulative, name = line.removeprefix("import time:").split("|")
            if cumulative.strip().isdigit() and not name.startswith("  "):  # top level only
                found.append((name.strip(), int(cumulative) / 1e6))
    return sorted(found, key=lambda f: -f[1])[:TOP_IMPORTS]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--runs", type=int, default=20, help="warm runs (default: %(default)s)")
    parser.add_argument("--pyz", type=Path, help="archive to measure (default: build dist/etcdmgr.pyz)")
    parser.add_argument("--interpreter", help="run the archive with this Python instead of its shebang")
    args = parser.parse_args(argv)
    found = measure(args.runs, args.pyz, args.interpreter)
    if not found:
        return 1
    print(figures_line(found))
    return 0 if all(f.ok for f in found) else 1


def figures(quick: bool) -> list[Figure]:
    found = measure(5 if quick else 20, None, None)
    if not found:
        raise RuntimeError("ctl does not work in this build")
    return found


def measure(runs: int, given: Path | None, interpreter: str | None) -> list[Figure]:
    """The figures, printed as they come; none when ctl does not work in this build."""
    pyz: Path = given or ROOT / "dist" / "etcdmgr.pyz"
    if given is None:
        subprocess.run([sys.executable, str(ROOT / "build_zipapp.py")], check=True)
    with pyz.open("rb") as f:
        shebang = f.readline().decode().removeprefix("#!").strip()
    prefix = [interpreter, str(pyz)] if interpreter else [str(pyz)]
    python = interpreter or shebang.removeprefix("/usr/bin/env ")
    print(f"archive {pyz} ({pyz.stat().st_size / 1e6:.1f} MB), python: {shutil.which(python) or python}")

    with tempfile.TemporaryDirectory(prefix="etcdmgr-bench-") as tmp_name:
        tmp = Path(tmp_name)
        warm_root = tmp / "shiv"
        bare = [timed([python, "-c", "pass"], warm_root) for _ in range(runs)]
        floor = report("python3 -c pass", bare)

        cold = [timed([*prefix, "version"], tmp / f"cold-{i}") for i in range(COLD_RUNS)]
        report("version, cold", cold, floor)
        timed([*prefix, "version"], warm_root)
        warm = [timed([*prefix, "version"], warm_root) for _ in range(runs)]
        version = report("version, warm", warm, floor, target=TARGET_S)

        ctl = [*prefix, "ctl", f"--backup-store=file://{tmp / 'store'}"]
        try:
            timed([*ctl, "--member-count=1", "--etcd-version=3.5.16", "configure-cluster"], warm_root)
        except RuntimeError as e:
            print(f"ctl get: not measured, ctl does not work in this build yet ({e})")
            return []
        gets = [timed([*ctl, "get"], warm_root) for _ in range(runs)]
        get = report("ctl get, warm", gets, floor, target=CTL_TARGET_S)
        imports = top_imports(
            [shutil.which(python) or python, str(pyz), *ctl[len(prefix) :], "get"], warm_root
        )
        print("ctl get, warm: top-level imports (cumulative, one run): "
              + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in imports))  # fmt: skip
    return [
        Figure("version, warm (beside python3 -c pass)", version, raw=floor, target=TARGET_S,
               target_text=f"<= {TARGET_S} s"),
        Figure("ctl get, warm (beside python3 -c pass)", get, raw=floor, target=CTL_TARGET_S,
               target_text=f"<= {CTL_TARGET_S} s"),
    ]  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
