"""One daemon, one member: the walkthrough's first steps, per etcd version."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Cluster, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = pytest.mark.etcd

VERSIONS = ["3.3.25", "3.4.23", "3.5.30"]


def _need(version: str) -> None:
    if find_binaries(version) is None:
        pytest.skip(f"etcd {version} is not installed (scripts/install-etcd {version})")


def _etcd_pid(c: Cluster, n: int) -> int:
    return int(json.loads((c[n].data_dir / "etcd.pid").read_text())["pid"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().split(") ")[1].startswith("Z")


@pytest.mark.parametrize("version", VERSIONS)
def test_one_member_cluster_from_the_spec_and_data_persists(
    make_cluster: Callable[..., Cluster], version: str
) -> None:
    _need(version)
    c = make_cluster(1)
    c.start()
    wait_for(
        "no spec logged", lambda: "no cluster spec set - must seed new cluster" in c[1].log(), timeout=20
    )
    c.configure(1, version)
    c.wait_members(1, timeout=60)
    c.put("hello", "world")
    assert c.get("hello", 1) == "world"
    assert (c.root / "backups/test/control/etcd-cluster-created").exists()
    # A new cluster holds nothing to protect: its member starts once, serving, never quarantined.
    assert "(quarantined)" not in c[1].log() and "LiftQuarantine" not in c[1].log()

    pid = _etcd_pid(c, 1)
    assert c[1].stop() == 0
    assert not _alive(pid), "etcd outlived its daemon"
    c[1].start()
    c.wait_members(1, timeout=60)
    assert c.get("hello", 1) == "world"


def test_kill9_leaves_no_etcd_behind(make_cluster: Callable[..., Cluster]) -> None:
    _need("3.4.23")
    c = make_cluster(1)
    c.start()
    c.configure(1, "3.4.23")
    c.wait_members(1)
    c.put("k", "v")
    pid = _etcd_pid(c, 1)
    c[1].kill9()
    wait_for("etcd to stop after its daemon was killed", lambda: not _alive(pid), timeout=30)
    c[1].start()
    c.wait_members(1)
    assert c.get("k", 1) == "v"


def test_corrupt_spec_is_logged_and_the_daemon_keeps_running(make_cluster: Callable[..., Cluster]) -> None:
    _need("3.4.23")
    c = make_cluster(1)
    spec = c.root / "backups/test/control/etcd-cluster-spec"
    spec.parent.mkdir(parents=True)
    spec.write_text("{not json")
    c.start()
    wait_for(
        "the corrupt spec to be reported", lambda: "cluster spec cannot be used" in c[1].log(), timeout=20
    )
    time.sleep(3)
    assert c[1].running
    assert c[1].log().count("cluster spec cannot be used") == 1, "one line per change, not per cycle"
    # ctl replaces an unreadable spec when given every field, and the daemon picks it up.
    c.configure(1, "3.4.23")
    c.wait_members(1)


def test_uninstalled_version_is_refused_and_nothing_runs(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(1)
    c.start()
    # A tested series (ctl refuses to write an untested one, 3.6+, that no host here has).
    result = c.ctl("-member-count=1", "-etcd-version=3.2.32", "configure-cluster")
    assert "not installed" in result.stderr
    wait_for("the missing version to be reported", lambda: "etcd 3.2.32" in c[1].log(), timeout=20)
    assert c[1].running
    assert not (c[1].data_dir / "state").exists()


def test_in_place_upgrade_without_restarting_the_daemon(make_cluster: Callable[..., Cluster]) -> None:
    _need("3.4.23")
    _need("3.5.30")
    c = make_cluster(1)
    c.configure(1, "3.4.23")
    c.start()
    c.wait_members(1)
    c.put("hello", "world")
    c.configure(1, "3.5.30")
    wait_for("the member to run 3.5.30", lambda: "restarted on etcd 3.5.30" in c[1].log(), timeout=60)
    c.wait_members(1)
    assert c.get("hello", 1) == "world"
    state = json.loads((c[1].data_dir / "state").read_text())
    assert state["etcdVersion"] == "3.5.30"


def test_hosts_file_block_names_every_node(make_cluster: Callable[..., Cluster], tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")
    c = make_cluster(2, extra_args=[f"--hosts-file={hosts}", "--dns-suffix=etcd.internal"])
    c.start()
    wait_for("both daemons to have ids", lambda: all((d.data_dir / "myid").exists() for d in c.daemons))
    expected = [f"{d.ip}\t{d.peer_id()}.etcd.internal" for d in c.daemons]
    wait_for(
        "both nodes in the hosts file",
        lambda: all(line in hosts.read_text() for line in expected),
        timeout=20,
    )
    text = hosts.read_text()
    assert text.startswith("127.0.0.1\tlocalhost\n"), "lines outside the managed block stay as they were"
    assert "# Begin host entries managed by etcd-manager[test] - do not edit" in text
