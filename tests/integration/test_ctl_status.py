"""`ctl status` against running daemons, from the store alone: the table and JSON of a healthy
three-member cluster; a stopped leader's daemon shown down under the new leader; a stale status
said plainly once no daemon runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from harness import Cluster, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow, pytest.mark.long]

VERSION = "3.5.30"


def status_json(c: Cluster) -> tuple[int, dict[str, Any]]:
    result = c.ctl("-o", "json", "status", check=False)
    return result.returncode, json.loads(result.stdout) if result.stdout else {}


def test_status_of_a_running_cluster_its_leader_stopped_then_all(
    make_cluster: Callable[..., Cluster],
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(3)
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    ids = {d.peer_id(): d for d in c.daemons}

    def serving() -> dict[str, Any] | None:
        rc, doc = status_json(c)
        peers = doc.get("status", {}).get("peers", [])
        healthy = [p for p in peers if p["daemon"] and p.get("memberHealthy") and not p["quarantined"]]
        return doc if rc == 0 and len(healthy) == 3 else None

    doc = wait_for("a status of three serving members", serving, timeout=60)
    status = doc["status"]
    assert {p["id"] for p in status["peers"]} == set(ids)
    assert status["leader"] == min(ids)
    assert status["spec"] == {"memberCount": 3, "etcdVersion": VERSION}
    assert all(p["member"] == "voting" and p["version"] == VERSION for p in status["peers"])
    assert {p["address"] for p in status["peers"]} == {f"{d.ip}:8000" for d in c.daemons}
    assert doc["stale"] is False and doc["degraded"] == [] and doc["ageSeconds"] < 10

    def with_first_backup() -> Any:
        # A new cluster serves at once; its first backup follows in the leader's next cycle.
        table = c.ctl("status")
        return table if any(line.startswith("last backup:  20") for line in table.stdout.splitlines()) else None

    table = wait_for("the first backup, taken once the cluster is created", with_first_backup, timeout=30)
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"cluster {status['clusterToken']}: spec 3 members, etcd {VERSION}; leader ")
    assert lines[1].split()[:3] == ["PEER", "ADDRESS", "ROLE"]
    rows = [line.split() for line in lines[2:5]]
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert [r[0] for r in rows if "leader" in r] == [status["leader"]]
    assert table.stderr == ""

    old = ids[status["leader"]]
    old.stop()

    def new_leader_sees_it_down() -> dict[str, Any] | None:
        rc, doc = status_json(c)
        s = doc.get("status", {})
        gone = [p for p in s.get("peers", []) if p["id"] == old.peer_id()]
        return (
            doc if rc == 1 and s.get("leader") != old.peer_id() and gone and not gone[0]["daemon"] else None
        )

    doc = wait_for("the new leader's status", new_leader_sees_it_down, timeout=60)
    assert f"the daemon of {old.peer_id()} does not answer the leader" in doc["degraded"]
    assert doc["stale"] is False

    c.stop_all()

    def stale() -> str | None:
        result = c.ctl("status", check=False)
        return (
            result.stderr if result.returncode == 1 and "no leader has written it" in result.stderr else None
        )

    warning = wait_for("the status to go stale (after a minute)", stale, timeout=90)
    assert warning.startswith("warning: the status is ")
    assert "are the daemons running and reaching the store?" in warning
