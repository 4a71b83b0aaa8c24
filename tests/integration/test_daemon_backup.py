"""Bad backups are refused; the walkthrough's disaster recovery itself runs with the pyz in
tests/e2e/test_walkthrough_dr.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from harness import Cluster, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


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
