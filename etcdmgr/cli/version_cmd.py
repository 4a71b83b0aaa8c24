"""`etcdmgr version`: what runs here (version, build, Python, etcd) and whether it can run.

Run from the one-file archive it also imports every native module the archive holds for this
Python, so a file that would fail in `pki` or `daemon` fails here first, with exit code 1.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from etcdmgr import __version__
from etcdmgr.cli.exits import run_mode
from etcdmgr.cli.goflags import parse
from etcdmgr.etcd.versions import DEFAULT_BIN_DIRS, all_binaries, version_key

USAGE = """\
Print the version, the build (commit, date, the Pythons and machine it is for), the Python it
runs on and the etcd versions installed. Exits 1 when a native module of the archive cannot load.

Usage:
  etcdmgr version [--etcd-bin-dir=DIRS]
  etcdmgr version -h | --help

Options:
  --etcd-bin-dir=DIRS   Extra directories with etcd-v<VERSION>*/ binaries (comma-separated).
"""

BUILD_INFO = "build.json"  # written by build_zipapp.py at the archive's top level


def build_info(archive: Path) -> dict[str, Any] | None:
    """The archive's build.json, or None when not run from a built archive."""
    try:
        with zipfile.ZipFile(archive) as z:
            info: dict[str, Any] = json.loads(z.read(BUILD_INFO))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return None
    return info


def native_failures(modules: Sequence[str], load: Callable[[str], object]) -> list[str]:
    """'module: why' for each module that does not import."""
    failures = []
    for name in modules:
        try:
            load(name)
        except Exception as e:  # any failure to load is the answer, whatever its type
            failures.append(f"{name}: {type(e).__name__}: {e}")
    return failures


def etcd_found(bin_dirs: Sequence[Path]) -> str:
    """The etcd versions installed, by the folder they were found in (the first one wins)."""
    found = all_binaries(bin_dirs)
    per_dir = []
    for folder in bin_dirs:
        versions = sorted((v for v, b in found.items() if b.etcd.is_relative_to(folder)), key=version_key)
        if versions:
            per_dir.append(f"{', '.join(versions)} in {folder}")
    return "; ".join(per_dir) or f"none (looked in {', '.join(str(d) for d in bin_dirs)})"


def report(
    info: dict[str, Any] | None, python: str, bin_dirs: Sequence[Path], load: Callable[[str], object]
) -> tuple[list[str], list[str]]:
    """(lines for stdout, failures); python is "X.Y" of the running interpreter."""
    lines = [f"etcdmgr {__version__}"]
    failures: list[str] = []
    if info is None:
        lines.append("build: none (run from the source tree)")
    else:
        pythons = info.get("pythons") or []
        lines.append(
            f"build: commit {info.get('commit', 'unknown')}, {info.get('built_at', 'unknown')}, "
            f"for CPython {', '.join(pythons)} on {info.get('arch', 'unknown')} Linux"
        )
    lines.append(f"python: {platform.python_implementation()} {platform.python_version()} ({sys.executable})")
    lines.append(f"etcd: {etcd_found(bin_dirs)}")
    if info is not None:
        modules = sorted(info.get("natives", {}).get(python, []))
        failures = native_failures(modules, load)
        state = "cannot all load" if failures else "all load"
        lines.append(f"native modules: {', '.join(modules) or 'none'}: {state}")
    return lines, failures


def _run(argv: Sequence[str]) -> int:
    args = parse(USAGE, "version", argv)
    extra = [Path(d) for d in str(args["--etcd-bin-dir"] or "").split(",") if d]
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    lines, failures = report(
        build_info(Path(sys.argv[0])), python, [*extra, *DEFAULT_BIN_DIRS], importlib.import_module
    )
    print("\n".join(lines))
    for failure in failures:
        print(f"etcdmgr version: native module {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: Sequence[str]) -> int:
    return run_mode("version", lambda: _run(argv))
