"""Where the built file unpacks when home cannot be used, as under a hardened systemd unit
(ProtectHome=read-only, DynamicUser=): the runtime folder, else a private temp folder; a folder
others can write is refused; no usable folder, or a SHIV_ROOT that cannot be used, is one line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pyz import run_pyz

from etcdmgr import __version__

UID = os.geteuid()
RUN_USER_DIR = Path("/run/user", str(UID))  # would come before TMPDIR when it exists
# Runs the rest of its command line with $HOME mounted read-only, in a mount namespace of its own.
READ_ONLY_HOME = ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$HOME" "$HOME" && exec "$@"', "sh"]


def bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a unit: no SHIV_ROOT, no runtime folder, a temp folder of its own."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SHIV_ROOT", "XDG_RUNTIME_DIR")}
    return {**env, "TMPDIR": str(tmp_path / "tmp"), **extra}


def read_only_home_works(tmp_path: Path) -> bool:
    probe = tmp_path / "probe-home"
    probe.mkdir()
    done = subprocess.run(
        [*READ_ONLY_HOME, "touch", str(probe / "x")],
        env={**os.environ, "HOME": str(probe)},
        capture_output=True,
        check=False,
    )
    return done.returncode != 0 and b"Read-only file system" in done.stderr


def test_read_only_home_unpacks_into_the_runtime_folder(pyz: Path, tmp_path: Path) -> None:
    if not read_only_home_works(tmp_path):
        pytest.skip("cannot mount a read-only home here (needs unshare -m and mount)")
    home, runtime = tmp_path / "home", tmp_path / "runtime"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    env = bare_env(tmp_path, HOME=str(home), XDG_RUNTIME_DIR=str(runtime))
    done = subprocess.run(
        [*READ_ONLY_HOME, str(pyz), "version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"etcdmgr {__version__}\n") and done.stderr == ""
    assert not (home / ".shiv").exists()
    assert any((runtime / "etcdmgr").glob("etcdmgr_*/site-packages/etcdmgr/cli/main.py"))
    assert (runtime / "etcdmgr").stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(RUN_USER_DIR.exists(), reason=f"{RUN_USER_DIR} exists and comes before TMPDIR")
def test_no_home_unpacks_into_a_private_temp_folder(pyz: Path, tmp_path: Path) -> None:
    done = run_pyz(pyz, "version", shiv_root=None, env=bare_env(tmp_path, HOME="/proc"))
    assert done.returncode == 0, done.stderr
    private = tmp_path / "tmp" / f"etcdmgr-{UID}"
    assert private.stat().st_mode & 0o777 == 0o700
    assert any(private.glob("etcdmgr_*/site-packages/etcdmgr/cli/main.py"))


@pytest.mark.skipif(RUN_USER_DIR.exists(), reason=f"{RUN_USER_DIR} exists and comes before TMPDIR")
def test_a_temp_folder_others_can_write_is_refused_in_one_line(pyz: Path, tmp_path: Path) -> None:
    env = bare_env(tmp_path, HOME="/proc")
    planted = tmp_path / "tmp" / f"etcdmgr-{UID}"
    planted.mkdir()
    planted.chmod(0o777)
    done = run_pyz(pyz, "version", shiv_root=None, env=env)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("etcdmgr: no folder to unpack into (/proc/.shiv: ")
    assert f"{planted}: others can write it (mode 0777)" in done.stderr
    assert "set SHIV_ROOT" in done.stderr
    assert list(planted.iterdir()) == []


def test_an_unusable_shiv_root_is_one_line(pyz: Path, tmp_path: Path) -> None:
    done = run_pyz(pyz, "version", shiv_root=Path("/proc/etcdmgr"), env=bare_env(tmp_path))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("etcdmgr: no folder to unpack into (/proc/etcdmgr: ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
