#!/usr/bin/env python3
"""Build the one-file executable dist/etcdmgr.pyz with shiv.

Usage: python3 build_zipapp.py [--output PATH] [--python SHEBANG] [--force]

Needs only Python and pip reaching PyPI: shiv lives in its own venv under build/, made on the
first run and reused. The runtime dependencies from pyproject.toml are installed once into a
folder under build/ named by a hash of the dependency list and the Python version, so a
rebuild after an edit of etcdmgr/ only repacks. Nothing is rebuilt when the output is newer
than every input (pyproject.toml, etcdmgr/, this script); --force rebuilds everything.

The archive runs on the Python minor version it was built with (cryptography, cffi and
msgpack ship compiled modules); the shebang picks the interpreter on the target host.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / "build"
TOOLS_VENV = BUILD / "zipapp-venv"
DEPS_CACHE = BUILD / "zipapp-deps"
DEFAULT_OUTPUT = ROOT / "dist" / "etcdmgr.pyz"
DEFAULT_SHEBANG = "/usr/bin/env python3"
ENTRY_POINT = "etcdmgr.cli.main:main"
PACKAGE = "etcdmgr"
# setuptools and wheel because the project is installed without build isolation, which
# would otherwise download a fresh setuptools on every build.
TOOLS = ("shiv>=1.0.6,<2", "setuptools>=64", "wheel")


def log(message: str) -> None:
    print(f"build_zipapp: {message}", flush=True)


def run(cmd: Sequence[str | Path]) -> None:
    subprocess.run([str(c) for c in cmd], check=True)


def inputs() -> Iterator[Path]:
    """Every path whose change must cause a rebuild; folders too, so a deleted file counts."""
    yield ROOT / "pyproject.toml"
    yield Path(__file__).resolve()
    for folder, dirs, files in os.walk(ROOT / PACKAGE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        yield Path(folder)
        for name in files:
            if not name.endswith((".pyc", ".pyo")):
                yield Path(folder, name)


def up_to_date(output: Path, shebang: str) -> bool:
    try:
        built = output.stat().st_mtime
        with output.open("rb") as f:
            first_line = f.readline()
    except FileNotFoundError:
        return False
    if first_line != f"#!{shebang}\n".encode():
        return False
    try:
        return all(p.stat().st_mtime < built for p in inputs())
    except FileNotFoundError:  # removed while we looked: something changed
        return False


def tools_python() -> Path:
    """The build venv's interpreter, with shiv and setuptools installed (made once)."""
    python = TOOLS_VENV / "bin" / "python"
    stamp = TOOLS_VENV / "tools.json"
    wanted = json.dumps(TOOLS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"creating build venv {TOOLS_VENV.relative_to(ROOT)}")
    shutil.rmtree(TOOLS_VENV, ignore_errors=True)
    run([sys.executable, "-m", "venv", TOOLS_VENV])
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *TOOLS])
    stamp.write_text(wanted)
    return python


def runtime_deps() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        deps: list[str] = tomllib.load(f)["project"]["dependencies"]
    return deps


def python_tag(python: Path) -> str:
    """The interpreter's version and platform: compiled dependencies are tied to both."""
    code = "import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())"
    return subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout


def deps_dir(python: Path, force: bool) -> Path:
    """Installed runtime dependencies, reused while the dependency list and Python stay the same."""
    deps = runtime_deps()
    key = hashlib.sha256(json.dumps([deps, python_tag(python)]).encode()).hexdigest()[:16]
    target = DEPS_CACHE / key
    if target.exists() and not force:
        return target
    log(f"installing runtime dependencies: {' '.join(deps)}")
    # Older sets are dropped so the cache holds one; a half-done install never takes the name.
    shutil.rmtree(DEPS_CACHE, ignore_errors=True)
    DEPS_CACHE.mkdir(parents=True)
    staging = DEPS_CACHE / f"{key}.tmp"
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", staging, *deps])
    staging.rename(target)
    return target


def install_project(python: Path, target: Path) -> None:
    """Install etcdmgr itself (no deps) into target, built from a clean copy of the sources.

    Building in the work tree would leave setuptools' build/lib behind, whose stale modules
    end up in later wheels.
    """
    with tempfile.TemporaryDirectory(prefix="etcdmgr-src-") as src:
        shutil.copy2(ROOT / "pyproject.toml", src)
        shutil.copytree(
            ROOT / PACKAGE, Path(src, PACKAGE), ignore=shutil.ignore_patterns("__pycache__", "*.py[co]")
        )
        run([
            python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
            "--no-deps", "--no-build-isolation", "--target", target, src,
        ])  # fmt: skip


def build(output: Path, shebang: str, force: bool) -> None:
    started = time.time()
    python = tools_python()
    deps = deps_dir(python, force)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="etcdmgr-app-") as app:
        install_project(python, Path(app))
        # Written beside the output and renamed, so a running test never sees half a file.
        partial = output.with_name(f".{output.name}.tmp")
        run([
            TOOLS_VENV / "bin" / "shiv", "--entry-point", ENTRY_POINT, "--output-file", partial,
            "--python", shebang, "--compile-pyc", "--site-packages", deps, "--site-packages", app,
        ])  # fmt: skip
    # Dated to the start of the build: a source edited while it ran is newer, so it is rebuilt.
    os.utime(partial, (started, started))
    partial.replace(output)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the one-file etcdmgr executable with shiv.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default: %(default)s")
    parser.add_argument("--python", default=DEFAULT_SHEBANG, help="shebang (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    output: Path = args.output.resolve()
    started = time.monotonic()
    if not args.force and up_to_date(output, args.python):
        log(f"up to date: {output}")
    else:
        build(output, args.python, args.force)
        log(f"built in {time.monotonic() - started:.1f} s")
    print(f"{output} {output.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
