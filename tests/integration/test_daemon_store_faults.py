"""A backup store that goes away under a running cluster is an error the leader reports, not an
empty store it acts on; when the store comes back, the leader carries on."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable

import pytest
from harness import Cluster, wait_for

from etcdmgr.controller.plan import NO_SPEC
from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"


def test_store_moved_away_under_a_running_cluster(make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(1, extra_args=["--backup-interval=4s", "--store-timeout=2s"])
    c.configure(1, VERSION)
    c.start()
    c.wait_members(1)
    c.put("hello", "world")
    wait_for("a backup", lambda: "took backup" in c[1].log(), timeout=60)

    store = c.root / "backups" / "test"
    away = c.root / "backups" / "moved-away"
    os.rename(store, away)
    wait_for("the leader to report the store gone", lambda: "has gone away" in c[1].log(), timeout=30)
    during = len(c[1].log())
    time.sleep(10)  # several cycles and backup intervals without the store

    log = c[1].log()
    assert NO_SPEC not in log, "a store that went away is not a store without a spec"
    assert "took backup" not in log[during:], "nothing is changed while the store is away"
    assert "control cycle failed: store folder" in log
    assert os.listdir(c.root / "backups") == ["moved-away"], "nothing recreated the store folder"
    assert c.healthy(c[1]) and c.get("hello", 1) == "world", "etcd keeps serving"
    assert c[1].running

    os.rename(away, store)
    back = len(c[1].log())
    wait_for("a backup once the store is back", lambda: "took backup" in c[1].log()[back:], timeout=60)
    assert c.get("hello", 1) == "world"


def test_a_failed_restore_is_marked_and_a_newer_one_runs(make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(1, extra_args=["--backup-interval=3s"])
    c.configure(1, VERSION)
    c.start()
    c.wait_members(1)
    c.put("hello", "world")
    good = c.backups_after_writes()[-1]
    # A second backup whose data is broken (it fails its checksum on the leader).
    store = c.root / "backups" / "test"
    broken = good[:-6] + "999999"
    shutil.copytree(store / good, store / broken)
    (store / broken / "etcd.backup.gz").write_bytes(b"not gzip at all")

    c.ctl("restore-backup", broken)
    wait_for("the restore to fail", lambda: "FAILED" in c.ctl("list-commands").stdout, timeout=60)
    listed = c.ctl("list-commands").stdout
    assert "checksum" in listed or "gzip" in listed, listed

    c.put("hello", "changed")
    c.ctl("restore-backup", good)  # queued after the failed one: it must not wait behind it
    wait_for("the newer restore to run", lambda: c.get("hello", 1) == "world", timeout=90)
    assert [line.split("\t")[0] for line in c.ctl("list-commands").stdout.splitlines()] == [
        line.split("\t")[0] for line in listed.splitlines()
    ], "only the failed command is left, until it is deleted"
    assert "skipping failed command" in c[1].log()
