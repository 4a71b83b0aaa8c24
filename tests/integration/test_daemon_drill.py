"""Backups you know restore, with running daemons: after the first backup an idle node drills
it (never the leader, whose etcd serves the cluster), and `ctl status` and `list-backups -o
wide` show how it went; a backup made bad before its checksums were computed fails its drill,
which the drilling node logs with the backup's name and ctl reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from harness import Cluster, Daemon, wait_for

from etcdmgr.backup.take import FAULT_TRUNCATE_SNAPSHOT
from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.5.30"


def first_drill(c: Cluster) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the first backup as `list-backups -o json` shows it, the leader's status) once drilled."""

    def drilled() -> tuple[dict[str, Any], dict[str, Any]] | None:
        backups = json.loads(c.ctl("-o", "json", "list-backups").stdout)
        status = json.loads(c.ctl("-o", "json", "status", check=False).stdout or "{}").get("status", {})
        record = status.get("drill", {}).get("record")
        return (backups[0], status) if backups and backups[0]["drill"] and record else None

    return wait_for("the first backup's drill", drilled, timeout=90)


def cluster_of_a_member_and_an_idle_node(
    make_cluster: Callable[..., Cluster],
) -> tuple[Cluster, Daemon, Daemon]:
    """Spec 1 on two daemons: the lowest id runs the member and leads, the other waits idle."""
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(2)
    c.configure(1, VERSION)
    c.start()
    c.wait_members(1)
    leader, idle = sorted(c.daemons, key=lambda d: d.peer_id())
    return c, leader, idle


def test_an_idle_node_drills_a_good_backup(make_cluster: Callable[..., Cluster]) -> None:
    c, leader, idle = cluster_of_a_member_and_an_idle_node(make_cluster)
    backup, status = first_drill(c)
    record = backup["drill"]
    assert record["passed"] is True, record
    assert record["node"] == idle.peer_id(), "never on the leader's disk while another node can"
    assert record["figures"] == backup["figures"], "the restore holds what the live member held"
    assert record["reason"].endswith(": as the live member showed when it was taken")
    assert status["leader"] == leader.peer_id()
    assert status["drill"] == {"backup": backup["name"], "record": record}
    assert f"restore drill of backup {backup['name']} passed" in idle.log()

    wide = c.ctl("-o", "wide", "list-backups").stdout.splitlines()
    assert wide[1].startswith(backup["name"]) and " passed " in wide[1]
    text = c.ctl("status").stdout
    assert f"last drill:   backup {backup['name']}: passed " in text


def test_a_backup_made_bad_before_its_checksums_fails_its_drill(
    make_cluster: Callable[..., Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAULT_TRUNCATE_SNAPSHOT, "1")  # every daemon started here cuts its snapshots
    c, leader, idle = cluster_of_a_member_and_an_idle_node(make_cluster)
    backup, status = first_drill(c)
    record = backup["drill"]
    assert record["passed"] is False and record["node"] == idle.peer_id()
    assert status["drill"] == {"backup": backup["name"], "record": record}
    assert "snapshot restore" in record["reason"]
    assert f"restore drill of backup {backup['name']} FAILED" in idle.log()
    wait_for(
        "the leader to report the failed drill",
        lambda: f"restore drill of backup {backup['name']} failed on {idle.peer_id()}" in leader.log(),
        timeout=30,
    )

    result = c.ctl("status", check=False)
    assert result.returncode == 1
    assert f"last drill:   backup {backup['name']}: FAILED " in result.stdout
    assert f"warning: degraded: the last restore drill (backup {backup['name']}) failed: " in result.stderr
    wide = c.ctl("-o", "wide", "list-backups").stdout.splitlines()
    assert wide[1].startswith(backup["name"]) and " FAILED " in wide[1]
