"""Backups and disaster recovery, as the walkthrough's "Disaster recovery" section does them."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest
from harness import Cluster, wait_for

from etcdmgr.controller.plan import ZERO_MEMBERS
from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


# 3.4.23 runs the same steps with the pyz in tests/e2e/test_walkthrough_dr.py.
@pytest.mark.parametrize("version", ["3.5.30"])
def test_total_loss_then_restore_backup(make_cluster: Callable[..., Cluster], version: str) -> None:
    if find_binaries(version) is None:
        pytest.skip(f"etcd {version} is not installed")
    c = make_cluster(3, extra_args=["--backup-interval=2s"])
    c.configure(3, version)
    c.start()
    c.wait_members(3)
    c.put("hello", "world")
    backups = c.backups_after_writes()

    c.stop_all()
    for d in c.daemons:
        shutil.rmtree(d.data_dir)
    c.start()
    wait_for("the zero-members line", lambda: any(ZERO_MEMBERS in d.log() for d in c.daemons), timeout=60)

    result = c.ctl("restore-backup", backups[-1])
    assert result.stdout.startswith("added restore-backup command: timestamp:")
    assert f'backup:"{backups[-1]}"' in result.stdout
    c.wait_members(3, timeout=120)
    assert all(c.get("hello", n) == "world" for n in (1, 2, 3))
    assert c.ctl("list-commands").stdout.strip() == ""


def test_bad_backup_is_refused_and_the_daemon_keeps_running(make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries("3.4.23") is None:
        pytest.skip("etcd 3.4.23 is not installed")
    c = make_cluster(1)
    c.configure(1, "3.4.23")
    c.start()
    c.wait_members(1)
    c.put("hello", "world")
    wait_for("a backup", lambda: "took backup" in c[1].log(), timeout=60)
    name = c.ctl("list-backups").stdout.split()[-1]
    assert c.ctl("restore-backup", "no-such-backup", check=False).returncode == 1

    (c.root / "backups/test" / name / "etcd.backup.gz").write_bytes(b"not gzip at all")
    c.ctl("restore-backup", name)
    wait_for(
        "the failed restore to be logged",
        lambda: "restore-backup command" in c[1].log() and "failed" in c[1].log(),
        timeout=60,
    )
    assert c[1].running
    assert c.get("hello", 1) == "world", "a refused restore touches nothing that runs"
