"""ctl's store-only commands run without an event loop, as real processes: they still give up on
a hung store at its deadline, and a daemon takes what they write."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Cluster, wait_for

from etcdmgr.etcd.versions import find_binaries

ROOT = Path(__file__).resolve().parents[2]
VERSION = "3.4.23"


def ctl(store: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "etcdmgr.py"), "ctl", f"--backup-store={store}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_a_hung_store_fails_a_loop_free_command_at_its_deadline(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert (
        ctl(
            f"file://{store}", "--member-count=1", f"--etcd-version={VERSION}", "configure-cluster"
        ).returncode
        == 0
    )
    spec = store / "control" / "etcd-cluster-spec"
    spec.unlink()
    os.mkfifo(spec)  # reading it blocks until someone writes: a hung mount
    started = time.monotonic()
    done = ctl(f"file://{store}", "get", timeout=40)
    took = time.monotonic() - started
    assert done.returncode == 1
    assert "did not answer within 10s (reading the cluster spec)" in done.stderr
    assert took < 20, "the hung read is abandoned, and does not hold the exit up"


@pytest.mark.etcd
@pytest.mark.slow
def test_a_daemon_takes_what_loop_free_commands_write(make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(1, extra_args=["--backup-interval=1h"])
    c.configure(1, VERSION)  # ctl configure-cluster, without an event loop
    c.start()
    c.wait_members(1)
    before = c.ctl("list-backups").stdout.split()
    assert "requested backup" in c.ctl("backup-now").stdout
    wait_for("the requested backup", lambda: len(c.ctl("list-backups").stdout.split()) > len(before), 60)
