"""The walkthrough's "Disaster recovery" with the built dist/etcdmgr.pyz, every daemon its own
process: write a key, wait for "took backup", stop all, delete all data, restart, see the
zero-members line, list-backups, restore-backup, and the key is back; `dump` reads the backup
without any cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Cluster, wait_for

from etcdmgr.controller.plan import ZERO_MEMBERS
from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


@pytest.mark.parametrize("version", ["3.4.23", "3.5.30"])
def test_walkthrough_disaster_recovery(pyz: Path, make_cluster: Callable[..., Cluster], version: str) -> None:
    if find_binaries(version) is None:
        pytest.skip(f"etcd {version} is not installed (scripts/install-etcd {version})")
    c = make_cluster(3, command=[str(pyz)], extra_args=["--backup-interval=2s"])
    c.configure(3, version)
    c.start()
    c.wait_members(3)
    c.put("hello", "world")
    backups = c.backups_after_writes()
    assert any("took backup" in d.log() for d in c.daemons)

    c.stop_all()
    for d in c.daemons:
        shutil.rmtree(d.data_dir)
    c.start()
    wait_for("the zero-members line", lambda: any(ZERO_MEMBERS in d.log() for d in c.daemons), timeout=60)

    result = c.ctl("restore-backup", backups[-1])
    assert result.stdout.startswith("added restore-backup command: timestamp:")
    c.wait_members(3, timeout=120)
    assert all(c.get("hello", n) == "world" for n in (1, 2, 3))

    dumped = subprocess.run(
        [str(pyz), "dump", f"--backup-store={c.store_url}", backups[-1]],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [json.loads(line) for line in dumped.stdout.splitlines() if line.strip()]
    assert any(r.get("key") == "/hello" and r.get("value") == "world" for r in rows), dumped.stdout[:500]
