"""The one-file executable: modes, help, Go-style aliases and relocation."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pyz import build_info, pythons, run_pyz

from etcdmgr import __version__


def test_version(pyz: Path) -> None:
    done = run_pyz(pyz, "version")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"etcdmgr {__version__}\nbuild: commit ")
    assert run_pyz(pyz, "--version").stdout == done.stdout


def clean_python(pyz: Path) -> tuple[str, Path]:
    """A supported Python with no cffi of its own, so only the archive's can serve it."""
    for version, python in pythons().items():
        if version in build_info(pyz)["pythons"]:
            own = subprocess.run(
                [str(python), "-c", "import _cffi_backend"], capture_output=True, check=False
            )
            if own.returncode != 0:
                return version, python
    pytest.skip("every supported Python here has a cffi of its own")


def test_version_fails_when_a_native_module_cannot_load(pyz: Path, tmp_path: Path) -> None:
    version, python = clean_python(pyz)
    shiv_root = tmp_path / "shiv"
    assert run_pyz(pyz, "version", interpreter=python, shiv_root=shiv_root).returncode == 0
    # A damaged unpacked copy: this Python's cffi backend is gone.
    tag = version.replace(".", "")
    for backend in shiv_root.glob(f"etcdmgr_*/site-packages/_cffi_backend.cpython-{tag}-*.so"):
        backend.unlink()
    done = run_pyz(pyz, "version", interpreter=python, shiv_root=shiv_root)
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1].endswith(": cannot all load")
    assert done.stderr.startswith("etcdmgr version: native module _cffi_backend: ModuleNotFoundError")


def test_help_lists_the_modes(pyz: Path) -> None:
    done = run_pyz(pyz, "--help")
    assert done.returncode == 0, done.stderr
    for mode in ("daemon", "ctl", "pki", "version"):
        assert f"etcdmgr {mode}" in done.stdout


def test_no_mode_prints_usage_and_fails(pyz: Path) -> None:
    done = run_pyz(pyz)
    assert done.returncode == 2
    assert "Usage:" in done.stdout


def test_unknown_mode(pyz: Path) -> None:
    done = run_pyz(pyz, "frobnicate")
    assert done.returncode == 2
    assert "unknown mode 'frobnicate'" in done.stderr


@pytest.mark.parametrize("mode", ["daemon", "ctl"])
def test_mode_help(pyz: Path, mode: str) -> None:
    done = run_pyz(pyz, mode, "--help")
    assert done.returncode == 0, done.stderr
    assert f"etcdmgr {mode}" in done.stdout
    assert "Usage:" in done.stdout


@pytest.mark.parametrize("mode", ["daemon", "ctl"])
def test_mode_unknown_flag_is_a_usage_error(pyz: Path, mode: str) -> None:
    done = run_pyz(pyz, mode, "--no-such-flag")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("link", "mode"), [("etcd-manager", "daemon"), ("etcd-manager-ctl", "ctl")])
def test_link_name_selects_the_mode(pyz: Path, tmp_path: Path, link: str, mode: str) -> None:
    alias = tmp_path / link
    alias.symlink_to(pyz)
    via_link = run_pyz(alias, "--help")
    assert via_link.returncode == 0, via_link.stderr
    assert via_link.stdout == run_pyz(pyz, mode, "--help").stdout
    assert run_pyz(alias, "-no-such-flag").returncode == 2


def test_runs_when_copied_elsewhere(pyz: Path, tmp_path: Path) -> None:
    # A fresh SHIV_ROOT makes this the cold path: unpack on first run.
    (tmp_path / "bin").mkdir()
    copy = Path(shutil.copy2(pyz, tmp_path / "bin" / "etcdmgr"))
    cache = tmp_path / "shiv"
    done = run_pyz(copy, "version", shiv_root=cache)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"etcdmgr {__version__}\n")
    assert any(cache.glob("etcdmgr_*/site-packages/etcdmgr/cli/main.py"))


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="no /usr/bin/python3")
def test_runs_with_the_system_python(pyz: Path) -> None:
    done = run_pyz(pyz, "version", interpreter="/usr/bin/python3")
    assert done.returncode == 0, done.stderr
    assert "python: CPython 3." in done.stdout
