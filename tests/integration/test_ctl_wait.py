"""`ctl backup-now --wait` and `ctl restore-backup --wait` end to end, against three daemons:
the backup's name is printed once it is stored; the restore is followed phase by phase until
every member serves again; a restore that fails ends with the leader's reason and exit 1."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from harness import Cluster

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.5.30"
STEP = re.compile(r"^\[ *\d+\.\ds\] ")


def test_backup_now_then_restore_it_and_a_bad_one(make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(3)
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    c.put("kept", "in the backup")

    before = c.ctl("list-backups").stdout.split()
    done = c.ctl("backup-now", "--wait", "--timeout=60s")
    name = done.stdout.strip()
    assert name not in before and name == c.ctl("list-backups").stdout.split()[-1]
    assert "waiting for the leader to take it" in done.stderr
    c.put("lost", "written after the backup")

    restored = c.ctl("restore-backup", name, "--wait", "--timeout=5m")
    lines = restored.stdout.splitlines()
    assert lines[0].startswith("added restore-backup command: ")
    steps = [STEP.sub("", line) for line in lines[1:] if STEP.match(line)]
    assert steps[0].startswith(f"verify: leader {min(d.peer_id() for d in c.daemons)} checked backup {name}")
    assert sorted(s.split()[2] for s in steps if s.startswith("restore: node ")) == sorted(
        d.peer_id() for d in c.daemons
    ), "one line per node that restored it"
    assert (
        "restore: the leader recorded the restored cluster and its spec; lifting the quarantine next" in steps
    )
    assert len([s for s in steps if s.startswith("quarantine lifted: ")]) == 3
    assert steps[-1] == f"done: backup {name} restored; the cluster serves clients"
    assert lines[-1].startswith(f"restore of backup {name} took ")
    c.wait_members(3)
    assert c.get("kept", 1) == "in the backup"
    assert c.get("lost", 2) is None

    bad = c.ctl("backup-now", "--wait", "--timeout=60s").stdout.strip()
    (c.root / "backups/test" / bad / "etcd.backup.gz").write_bytes(b"not gzip at all")
    failed = c.ctl("restore-backup", bad, "--wait", "--timeout=2m", check=False)
    assert failed.returncode == 1
    assert re.search(
        rf"restore-backup command \S+ failed \(.*\): backup {bad} cannot be used: ", failed.stderr
    )
