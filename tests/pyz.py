"""Build (when stale) and run the one-file executables dist/etcdmgr*.pyz in tests."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
PYZ = DIST / "etcdmgr.pyz"  # this machine's
# The archive unpacks once per build into SHIV_ROOT. Kept in the (git-ignored) build folder
# rather than ~/.shiv: it stays warm across test runs, since an unchanged build keeps its
# content-hash build id, and stale unpacked builds are pruned here instead of piling up.
SHIV_ROOT = ROOT / "build" / "shiv-root"


def build_info(pyz: Path) -> dict[str, Any]:
    with zipfile.ZipFile(pyz) as z:
        info: dict[str, Any] = json.loads(z.read("build.json"))
    return info


def ensure_pyz() -> Path:
    """Build dist/etcdmgr*.pyz unless newer than their sources; return this machine's.

    One process at a time (pytest-xdist's workers each call this), so no worker runs an archive
    that another is still writing."""
    (ROOT / "build").mkdir(exist_ok=True)
    with (ROOT / "build" / "pyz-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(
            [sys.executable, str(ROOT / "build_zipapp.py")], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"build_zipapp.py failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    current = build_info(PYZ)["build_id"]
    # Earlier builds' unpacked folders, and their lock files (".etcdmgr_<id>.lock").
    for old in SHIV_ROOT.glob("*etcdmgr_*"):
        if current not in old.name:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
    return PYZ


def run_pyz(
    exe: Path,
    *args: str,
    shiv_root: Path | None = SHIV_ROOT,
    interpreter: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run exe (the archive or a link or copy of it) as its own process.

    It runs through its shebang unless an interpreter is given; shiv_root None leaves SHIV_ROOT
    unset (the archive then picks its folder itself); env replaces the inherited environment.
    """
    cmd = [str(exe), *args] if interpreter is None else [str(interpreter), str(exe), *args]
    env = dict(os.environ if env is None else env)
    env.pop("SHIV_ROOT", None)
    if shiv_root is not None:
        env["SHIV_ROOT"] = str(shiv_root)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _version_of(python: Path) -> str | None:
    """ "X.Y" of a CPython interpreter, None when it does not run or is another implementation."""
    code = "import platform, sys; sys.stdout.write('%s %d.%d' % ((platform.python_implementation(),) + sys.version_info[:2]))"
    try:
        out = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, timeout=30, check=False
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out[1] if len(out) == 2 and out[0] == "CPython" else None


def _candidates() -> list[Path]:
    """Each interpreter pyenv holds, then python3.N on PATH (pyenv's shims skipped: they run only
    the active version, slowly), then those scripts/install-python put under build/."""
    found: list[Path] = []
    shims = None
    pyenv = shutil.which("pyenv")
    if pyenv:
        done = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        pyenv_root = Path(done.stdout.strip()) if done.returncode == 0 else None
        if pyenv_root and (pyenv_root / "versions").is_dir():
            shims = pyenv_root / "shims"
            for folder in sorted((pyenv_root / "versions").iterdir()):
                found += sorted(
                    p for p in (folder / "bin").glob("python*") if re.fullmatch(r"python\d\.\d+", p.name)
                )
    names = [f"python3.{n}" for n in range(20)] + ["python3"]
    found += [Path(p) for name in names if (p := shutil.which(name)) and Path(p).parent != shims]
    found += sorted(ROOT.glob("build/python3.*/usr/bin/python3.*"))
    return found


@functools.cache
def pythons() -> dict[str, Path]:
    """Every CPython on this machine by "X.Y" (the first found of each), oldest first."""
    by_version: dict[str, Path] = {}
    for python in dict.fromkeys(_candidates()):
        version = _version_of(python)
        if version and version not in by_version:
            by_version[version] = python
    return dict(sorted(by_version.items(), key=lambda kv: tuple(map(int, kv[0].split(".")))))
