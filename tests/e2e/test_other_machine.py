"""The other machine's file run for real (dist/etcdmgr-aarch64.pyz on an x86_64 host): that
machine's Debian CPythons under qemu's user-mode emulator (`PYTHON_ARCH=arm64
scripts/install-python 3.11 3.14`, which scripts/test runs) load every native module of the
file, and make CAs with that machine's build of cryptography."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
from pyz import DIST, ROOT, build_info, run_pyz

pytestmark = pytest.mark.slow

OTHER = {"x86_64": "aarch64", "aarch64": "x86_64"}[platform.machine()]
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}[OTHER]
PYTHONS = sorted(ROOT.glob(f"build/{GOARCH}/python3.*/usr/bin/python3.*"))
PYZ = DIST / f"etcdmgr-{OTHER}.pyz"


@pytest.mark.skipif(not PYTHONS, reason=f"no {GOARCH} Python (PYTHON_ARCH={GOARCH} scripts/install-python)")
@pytest.mark.parametrize("python", PYTHONS, ids=lambda p: p.name)
def test_runs_on_the_other_machine(pyz: Path, python: Path, tmp_path: Path) -> None:
    assert build_info(PYZ)["arch"] == OTHER
    done = run_pyz(PYZ, "version", interpreter=python, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].endswith(f"on {OTHER} Linux")
    assert lines[2].startswith(f"python: CPython {python.name.removeprefix('python')}.")
    assert lines[4].endswith(": all load") and "_cffi_backend" in lines[4]
    pki = run_pyz(PYZ, "pki", "init", f"--pki-dir={tmp_path / 'pki'}", interpreter=python, timeout=180)
    assert pki.returncode == 0, pki.stderr
    assert (tmp_path / "pki" / "etcd-clients-ca.key").exists()
    # This machine's file refuses that Python in one line.
    wrong = run_pyz(pyz, "version", interpreter=python, timeout=180)
    assert (wrong.returncode, wrong.stdout) == (1, "")
    assert wrong.stderr == (
        f"this etcdmgr.pyz is built for {platform.machine()} Linux and this host is {OTHER}: "
        f"use the {OTHER} build.\n"
    )
