"""The one file under every CPython found on this machine: each supported one runs `version`,
`pki init` and `ctl` (the newest also a one-member cluster); each older one gets one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Cluster, http, wait_for
from pyz import build_info, pythons, run_pyz

from etcdmgr import __version__
from etcdmgr.etcd.versions import find_binaries

FOUND = pythons()
OLD = [v for v in FOUND if tuple(map(int, v.split("."))) < (3, 11)]
ETCD = "3.4.23"


def supported(pyz: Path) -> list[str]:
    return [v for v in build_info(pyz)["pythons"] if v in FOUND]


@pytest.fixture(params=[v for v in FOUND if v not in OLD] or [None])
def version(request: pytest.FixtureRequest, pyz: Path) -> str:
    """Each supported "X.Y" found here."""
    found: str | None = request.param
    if found is None or found not in build_info(pyz)["pythons"]:
        pytest.skip(f"the archive is not built for Python {found}")
    return found


@pytest.fixture
def python(version: str) -> Path:
    return FOUND[version]


def test_the_archive_is_for_every_current_python(pyz: Path) -> None:
    assert build_info(pyz)["pythons"][:3] == ["3.11", "3.12", "3.13"]
    assert len(supported(pyz)) >= 2, f"fewer than two supported Pythons here: {sorted(FOUND)}"


def test_version(pyz: Path, version: str, python: Path) -> None:
    done = run_pyz(pyz, "version", interpreter=python)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    info = build_info(pyz)
    assert lines[0] == f"etcdmgr {__version__}"
    assert lines[1].startswith(f"build: commit {info['commit']}, {info['built_at']}, for CPython 3.11, ")
    assert lines[2].startswith(f"python: CPython {version}.")
    assert lines[3].startswith("etcd: ")
    assert lines[4].endswith(": all load") and "_cffi_backend" in lines[4]


def test_pki_init_and_ctl(pyz: Path, python: Path, tmp_path: Path) -> None:
    pki = run_pyz(pyz, "pki", "init", f"--pki-dir={tmp_path / 'pki'}", interpreter=python)
    assert pki.returncode == 0, pki.stderr
    assert any((tmp_path / "pki").rglob("*.key"))
    store = f"--backup-store=file://{tmp_path / 'store'}"
    spec = run_pyz(
        pyz, "ctl", store, "-member-count=1", f"-etcd-version={ETCD}", "configure-cluster", interpreter=python
    )
    assert spec.returncode == 0, spec.stderr
    got = run_pyz(pyz, "ctl", store, "get", interpreter=python)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip().splitlines()[-1] == f'member_count:1 etcd_version:"{ETCD}"'


@pytest.mark.skipif(not OLD, reason="no Python older than 3.11 here")
@pytest.mark.parametrize("old", OLD)
def test_an_older_python_gets_one_line(pyz: Path, old: str) -> None:
    done = run_pyz(pyz, "version", interpreter=FOUND[old])
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("etcdmgr needs CPython 3.11 to 3.1")
    assert f"this is CPython {old}." in done.stderr and "install python3.11 or newer" in done.stderr


@pytest.mark.etcd
@pytest.mark.slow
def test_a_one_member_cluster_on_the_newest_python(pyz: Path, make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries(ETCD) is None:
        pytest.skip(f"etcd {ETCD} is not installed (scripts/install-etcd {ETCD})")
    newest = supported(pyz)[-1]
    c = make_cluster(1, command=[str(FOUND[newest]), str(pyz)])
    c.start(1)
    c.configure(1, ETCD)
    c.wait_members(1, timeout=60)
    url = f"{c[1].client_url}/v2/keys/hello"
    put = wait_for("v2 put", lambda: http("PUT", url, {"value": f"python {newest}"}), timeout=30)
    assert put["node"]["value"] == f"python {newest}"
    assert c.get("hello", 1) == f"python {newest}"
