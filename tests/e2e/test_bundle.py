"""The air-gapped bundle: built by one command, installed into a fresh prefix in a network
namespace with no network, and a one-member cluster run from what it installed, still offline."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from pyz import build_info, pythons

from etcdmgr import __version__
from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ETCD = "3.4.23"
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]

# Runs offline (in `unshare -n`, only loopback up), with the installed files only: the spec, the
# daemon through its etcd-manager link, a write and a read with the installed etcdctl.
CLUSTER = r"""
set -eu
T=$1
ip link set lo up
"$T/usr/bin/etcdmgr" ctl --backup-store=file://$T/store -member-count=1 -etcd-version=@ETCD@ configure-cluster
"$T/usr/bin/etcd-manager" --insecure --etcd-insecure --address=127.0.0.1 --etcd-address=127.0.0.1 \
  --cluster-name=test --backup-store=file://$T/store --discovery-store=file://$T/discovery \
  --data-dir=$T/data --client-urls=http://127.0.0.1:4001 --quarantine-client-urls=http://127.0.0.1:8001 \
  --peer-urls=http://127.0.0.1:2380 --etcd-bin-dir=$T/opt --cycle-interval=2s \
  --discovery-poll-interval=2s > "$T/daemon.log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon || true' EXIT
ctl="$T/opt/etcd-v@ETCD@-linux-@GOARCH@/etcdctl"
for _ in $(seq 120); do
  ETCDCTL_API=3 "$ctl" --endpoints=http://127.0.0.1:4001 put hello offline >/dev/null 2>&1 && break
  sleep 0.5
done
ETCDCTL_API=3 "$ctl" --endpoints=http://127.0.0.1:4001 get hello --print-value-only
# The member's etcd, not a restore drill's throw-away one (name=scratch).
pid=$(grep -v 'name=scratch' "$T/daemon.log" | sed -n 's/.*started etcd @ETCD@ pid \([0-9]*\).*/\1/p' | tail -n1)
echo "etcd: $(readlink /proc/$pid/exe)"
"""


def no_network_available() -> bool:
    """Can we make a network namespace (and bring its loopback up)?"""
    done = subprocess.run(
        ["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, check=False
    )
    return done.returncode == 0


def supported_pythons(pyz: Path) -> dict[str, Path]:
    return {v: p for v, p in pythons().items() if v in build_info(pyz)["pythons"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle of this machine with one etcd version, unpacked."""
    if find_binaries(ETCD) is None:
        pytest.skip(f"etcd {ETCD} is not installed (scripts/install-etcd {ETCD})")
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, str(ROOT / "build_zipapp.py"), "--arch", platform.machine(), "--bundle",
         "--etcd-version", ETCD, "--dist", str(dist)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    tarball = dist / f"etcdmgr-{__version__}-linux-{GOARCH}.tar.gz"
    with tarfile.open(tarball) as tar:
        tar.extractall(dist, filter="data")
    return dist / f"etcdmgr-{__version__}-linux-{GOARCH}"


def test_the_bundle_holds_the_file_etcd_and_their_sums(bundle: Path) -> None:
    folder = f"etcd-v{ETCD}-linux-{GOARCH}"
    names = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    assert names == sorted(
        ["SHA256SUMS", "etcdmgr.pyz", "install.sh", f"opt/{folder}/etcd", f"opt/{folder}/etcdctl"]
    )
    sums = dict(reversed(line.split("  ")) for line in (bundle / "SHA256SUMS").read_text().splitlines())
    assert sums == {n: sha256(bundle / n) for n in names if n not in ("SHA256SUMS", "install.sh")}


def test_installed_offline_then_a_cluster_runs_from_it(bundle: Path, tmp_path: Path) -> None:
    if not no_network_available():
        pytest.skip("cannot make a network namespace here (unshare -n)")
    target = tmp_path / "host"
    install = subprocess.run(
        ["unshare", "-n", str(bundle / "install.sh"), f"--prefix={target}/usr", f"--etcd-dir={target}/opt"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    assert f"installed {target}/opt/etcd-v{ETCD}-linux-{GOARCH}" in install.stdout
    assert f"etcd: {ETCD} in {target}/opt" in install.stdout
    assert "native modules: " in install.stdout and ": all load" in install.stdout
    installed = target / "opt" / f"etcd-v{ETCD}-linux-{GOARCH}" / "etcd"
    assert sha256(installed) == sha256(bundle / "opt" / f"etcd-v{ETCD}-linux-{GOARCH}" / "etcd")
    assert (target / "usr" / "bin" / "etcd-manager").resolve() == target / "usr" / "bin" / "etcdmgr"

    script = CLUSTER.replace("@ETCD@", ETCD).replace("@GOARCH@", GOARCH)
    done = subprocess.run(
        ["unshare", "-n", "bash", "-c", script, "cluster", str(target)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    log = (target / "daemon.log").read_text() if (target / "daemon.log").exists() else ""
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{log}"
    assert done.stdout.splitlines()[-2:] == ["offline", f"etcd: {installed}"], log


def test_a_changed_file_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    subprocess.run(["cp", "-a", str(bundle), str(copy)], check=True)
    with (copy / "etcdmgr.pyz").open("ab") as f:
        f.write(b"\0")
    done = subprocess.run(
        [str(copy / "install.sh"), f"--prefix={tmp_path}/usr", f"--etcd-dir={tmp_path}/opt"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "do not match SHA256SUMS" in done.stderr
    assert not (tmp_path / "usr").exists() and not (tmp_path / "opt").exists()


def test_installed_for_another_python(bundle: Path, tmp_path: Path) -> None:
    """--python: for a host whose python3 cannot run the file but another Python can."""
    version, python = list(supported_pythons(bundle / "etcdmgr.pyz").items())[-1]
    done = subprocess.run(
        [str(bundle / "install.sh"), f"--prefix={tmp_path}", f"--etcd-dir={tmp_path}/opt", f"--python={python}"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"python: CPython {version}." in done.stdout
    assert (tmp_path / "bin" / "etcdmgr").read_bytes().startswith(f"#!{python}\n".encode())
