"""kill -9 of the leading daemon in the middle of an etcd version change on a 3-member cluster.

The leader is the lowest peer id among running daemons. It is killed at the start of the work
(logical: as it quarantines the cluster or queues the restore; in place: right after it restarted
the first member on the new version) and restarted a second later. The change must still
complete: every member serves the target version, no key is lost and no command is left queued.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from harness import Cluster, Daemon, http, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

POLL_S = 0.02  # fast enough to land inside the change, which takes seconds


def need(*versions: str) -> None:
    for v in versions:
        if find_binaries(v) is None:
            pytest.skip(f"etcd {v} is not installed (scripts/install-etcd {v})")


def leader(c: Cluster) -> Daemon:
    """The lowest peer id among running daemons leads (etcdmgr.peer.election)."""
    return min(c.running_daemons(), key=lambda d: d.peer_id())


def served_versions(c: Cluster) -> set[str]:
    """The etcd version each member reports on its client URL (raises while one does not answer)."""
    return {http("GET", f"{d.client_url}/version", timeout=2)["etcdserver"] for d in c.daemons}


def log_marks(c: Cluster) -> dict[int, int]:
    return {d.n: len(d.log()) for d in c.daemons}


def logged_since(c: Cluster, marks: dict[int, int], text: str) -> bool:
    return any(text in d.log()[marks[d.n] :] for d in c.daemons)


def command_queued(c: Cluster) -> bool:
    return any((c.root / "backups" / "test" / "control").glob("*/_command.json"))


def until(what: str, fn: Callable[[], bool], timeout: float = 60.0) -> None:
    wait_for(what, fn, timeout=timeout, interval=POLL_S)


def seeded(make_cluster: Callable[..., Cluster], version: str) -> Cluster:
    c = make_cluster(3)
    c.configure(3, version)
    c.start()
    c.wait_members(3)
    c.etcdctl(1, "put", "/v3key", "kept")
    c.put("v2key", "kept")
    return c


def kill_and_restart_leader(c: Cluster) -> Daemon:
    old = leader(c)
    old.kill9()
    time.sleep(1)
    old.start()
    return old


def assert_done(c: Cluster, version: str) -> None:
    wait_for(f"every member serving etcd {version}", lambda: served_versions(c) == {version}, timeout=120)
    c.wait_members(3, timeout=60)
    assert c.get3("/v3key", 1) == "kept"
    assert all(c.get("v2key", n) == "kept" for n in (1, 2, 3))
    assert c.ctl("list-commands").stdout.strip() == ""
    assert all(d.running for d in c.daemons)


def test_leader_killed_during_logical_downgrade(make_cluster: Callable[..., Cluster]) -> None:
    need("3.5.30", "3.3.25")
    c = seeded(make_cluster, "3.5.30")
    marks = log_marks(c)  # "quarantine" was already logged when the cluster was created

    c.configure(3, "3.3.25")
    until("the logical change to start", lambda: logged_since(c, marks, "quarantine") or command_queued(c))
    kill_and_restart_leader(c)

    assert_done(c, "3.3.25")
    assert "queued restore-backup" in "".join(d.log()[marks[d.n] :] for d in c.daemons)


def test_leader_killed_during_in_place_upgrade(make_cluster: Callable[..., Cluster]) -> None:
    need("3.4.23", "3.5.30")
    c = seeded(make_cluster, "3.4.23")
    marks = log_marks(c)

    c.configure(3, "3.5.30")
    until("the first member restarted on 3.5.30", lambda: logged_since(c, marks, "restarted on etcd 3.5.30"))
    kill_and_restart_leader(c)

    assert_done(c, "3.5.30")
