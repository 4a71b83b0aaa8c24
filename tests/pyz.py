"""Build (when stale) and run the one-file executable dist/etcdmgr.pyz in tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYZ = ROOT / "dist" / "etcdmgr.pyz"
# shiv unpacks the archive once per build into SHIV_ROOT. Kept in the (git-ignored) build
# folder rather than ~/.shiv: it stays warm across test runs, since an unchanged build keeps
# its content-hash build id, and stale extractions are pruned here instead of piling up.
SHIV_ROOT = ROOT / "build" / "shiv-root"


def build_id(pyz: Path) -> str:
    with zipfile.ZipFile(pyz) as z:
        build: str = json.loads(z.read("environment.json"))["build_id"]
    return build


def ensure_pyz() -> Path:
    """Build dist/etcdmgr.pyz unless it is newer than its sources; return its path."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "build_zipapp.py")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"build_zipapp.py failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    current = build_id(PYZ)
    # Earlier builds' extractions and shiv's lock files beside them (".<name>_<id>_lock").
    for old in SHIV_ROOT.glob(f"*{PYZ.name}_*"):
        if current not in old.name:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
    return PYZ


def run_pyz(
    exe: Path,
    *args: str,
    shiv_root: Path = SHIV_ROOT,
    interpreter: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run exe (the archive or a link or copy of it) as its own process.

    It runs through its shebang unless an interpreter is given.
    """
    cmd = [str(exe), *args] if interpreter is None else [interpreter, str(exe), *args]
    env = {**os.environ, "SHIV_ROOT": str(shiv_root)}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
