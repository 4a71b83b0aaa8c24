"""Backups that fail back off and are reported once per reason; a membership change still goes
ahead on a recent backup; a logical version change never quarantines and lifts in a loop, and
carries v2 keys into v3 without overwriting newer v3 data; ETCD_ENABLE_V2=false is honoured."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from harness import ROOT, Cluster, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"


def need(*versions: str) -> None:
    for v in versions:
        if find_binaries(v) is None:
            pytest.skip(f"etcd {v} is not installed")


@pytest.fixture
def refuse_new_entries() -> Iterator[Callable[[Path, bool], None]]:
    """`refuse(folder, True)` makes creating anything in `folder` fail, for root too (the
    immutable attribute; mode 0555 for other users); `refuse(folder, False)` undoes it. Undone
    at the end of the test whatever happens."""
    locked: set[Path] = set()

    def refuse(folder: Path, on: bool) -> None:
        if os.geteuid() != 0:
            folder.chmod(0o555 if on else 0o755)
        elif shutil.which("chattr") is None:
            pytest.skip("chattr is not installed")
        else:
            result = subprocess.run(
                ["chattr", "+i" if on else "-i", str(folder)], capture_output=True, text=True
            )
            if result.returncode != 0:
                pytest.skip(f"cannot make {folder} immutable here: {result.stderr.strip()}")
        (locked.add if on else locked.discard)(folder)

    yield refuse
    for folder in list(locked):
        refuse(folder, False)


def backups(c: Cluster) -> list[Path]:
    return sorted(p.parent for p in (c.root / "backups" / "test").glob("*/_etcd_backup.meta"))


def test_a_store_that_refuses_writes_backs_off_and_a_member_is_still_added(
    make_cluster: Callable[..., Cluster], refuse_new_entries: Callable[[Path, bool], None]
) -> None:
    need(VERSION)
    c = make_cluster(2, extra_args=["--backup-interval=3h"])
    c.configure(1, VERSION)
    c.start(1)
    c.wait_members(1)
    wait_for("the first backup", lambda: backups(c), timeout=60)
    # Make it two hours old (the name is its time): not due, older than the minute after which
    # a change takes a new backup first, younger than the day a change may go on without one.
    [only] = backups(c)
    taken = datetime.strptime(only.name[:20], "%Y-%m-%dT%H:%M:%SZ")
    only.rename(only.with_name(f"{taken - timedelta(hours=2):%Y-%m-%dT%H:%M:%SZ}-000001"))
    refuse_new_entries(c.root / "backups" / "test", True)

    c.start(2)
    c.configure(2, VERSION)
    c.wait_members(2, timeout=90)
    log = c[1].log() + c[2].log()  # the lower id leads, and the second may have it
    assert "without a new backup (the newest is less than 24h old)" in log
    assert log.count("backup failed: ") == 1, "one line per reason"
    assert "Check that the backup store" in log

    # The backup is retried, ever less often, and not at every cycle (2 s here).
    attempts = log.count("decision: TakeBackup") + log.count("decision: AddMember")
    assert attempts <= 6, attempts
    refuse_new_entries(c.root / "backups" / "test", False)
    wait_for(
        "a backup once the store takes writes",
        lambda: "backups work again" in c[1].log() + c[2].log(),
        timeout=60,
    )
    assert len(backups(c)) == 2


def test_etcd_enable_v2_false_leaves_the_v2_keyspace_out_of_backups(
    make_cluster: Callable[..., Cluster],
) -> None:
    need(VERSION)
    c = make_cluster(1, command=["env", "ETCD_ENABLE_V2=false", sys.executable, str(ROOT / "etcdmgr.py")])
    c.configure(1, VERSION)
    c.start()
    wait_for("a backup", lambda: "took backup" in c[1].log(), timeout=90)
    [backup] = backups(c)
    # No etcd.v2.json.gz beside the snapshot (etcdmgr-verify.json holds the figures a drill checks).
    assert sorted(p.name for p in backup.iterdir()) == [
        "SHA256SUMS",
        "_etcd_backup.meta",
        "etcd.backup.gz",
        "etcdmgr-verify.json",
    ]
    assert "backup failed" not in c[1].log()


def test_a_logical_change_while_backups_fail_quarantines_once_and_keeps_newer_v3_keys(
    make_cluster: Callable[..., Cluster], refuse_new_entries: Callable[[Path, bool], None]
) -> None:
    old, new = "3.3.25", "3.5.30"  # two minors apart: a logical change
    need(old, new)
    c = make_cluster(1, extra_args=["--backup-interval=10s"])
    c.configure(1, old)
    c.start()
    c.wait_members(1)
    c.put("only-v2", "copied")
    c.put("both", "old v2 value")
    c.etcdctl(1, "put", "/both", "newer v3 value")
    wait_for("a backup", lambda: backups(c), timeout=60)
    refuse_new_entries(c.root / "backups" / "test", True)

    c.configure(1, new)
    wait_for("the move to fail", lambda: "did not happen: lifting the quarantine" in c[1].log(), timeout=90)
    retried = "decision: TakeBackup: retrying a backup"
    wait_for("two retried backups", lambda: c[1].log().count(retried) >= 2, timeout=60)
    wait_for("the next decision", lambda: c[1].log().split(retried)[-1].count("decision: ") >= 1, timeout=30)
    log = c[1].log()
    assert log.count("decision: LogicalVersionChange") == 1, "quarantined once, not at every cycle"
    assert "backups work again" not in log
    assert "it waits, serving, until a backup succeeds" in log
    assert c.healthy(c[1]) and c.get("both", 1) == "old v2 value", "clients are served meanwhile"

    refuse_new_entries(c.root / "backups" / "test", False)
    wait_for(f"etcd {new}", lambda: f"version={new}" in c[1].log() and c.healthy(c[1]), timeout=180)
    c.wait_members(1)
    assert c.get3("/both", 1) == "newer v3 value", "a v2 key never overwrites newer v3 data"
    assert c.get3("/only-v2", 1) == "copied"
    assert "skipped 1 that v3 already holds" in c[1].log()
