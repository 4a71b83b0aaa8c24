"""The walkthrough's "Upgrading" step with the built dist/etcdmgr.pyz, every daemon its own process.

Three daemons run a spec of three members on etcd 3.3.25 holding a v2 key. A new spec with etcd
3.5.30 is picked up without bouncing any daemon; 3.3 -> 3.5 cannot be done in place, so it is the
logical change (quarantine, back up, restore on the new version), which carries the v2 keys into
the v3 keyspace: `ETCDCTL_API=3 etcdctl get "" --prefix` shows them, as in the walkthrough. The
downgrade back to 3.3.25 keeps the key readable through both APIs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Cluster, http, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

OLD = "3.3.25"
NEW = "3.5.30"


def served_versions(c: Cluster) -> set[str]:
    """The etcd server version each member's client URL reports (only when all three answer)."""
    versions = set()
    for d in c.daemons:
        versions.add(http("GET", f"{d.client_url}/version", timeout=2)["etcdserver"])
    return versions


def wait_all_on(c: Cluster, version: str) -> None:
    wait_for(f"every member serving etcd {version}", lambda: served_versions(c) == {version}, timeout=180)
    c.wait_members(3, timeout=120)


def dump_v3(c: Cluster, n: int, version: str) -> list[str]:
    """`ETCDCTL_API=3 etcdctl get "" --prefix` with the etcdctl of `version`, as the walkthrough runs it."""
    binaries = find_binaries(version)
    assert binaries is not None
    done = subprocess.run(
        [str(binaries.etcdctl), f"--endpoints={c[n].client_url}", "get", "", "--prefix"],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "ETCDCTL_API": "3"},
        check=True,
    )
    return done.stdout.splitlines()


def test_walkthrough_upgrade_and_downgrade(pyz: Path, make_cluster: Callable[..., Cluster]) -> None:
    for v in (OLD, NEW):
        if find_binaries(v) is None:
            pytest.skip(f"etcd {v} is not installed (scripts/install-etcd {v})")
    c = make_cluster(3, command=[str(pyz)])
    c.configure(3, OLD)
    c.start()
    c.wait_members(3)
    # The walkthrough's curl: a v2 write.
    put = wait_for(
        "v2 put", lambda: http("PUT", f"{c[1].client_url}/v2/keys/hello", {"value": "world"}), timeout=30
    )
    assert put["node"]["value"] == "world"
    assert c.ctl("get").stdout.strip().splitlines()[-1] == f'member_count:3 etcd_version:"{OLD}"'
    pids = [d.proc.pid for d in c.daemons if d.proc is not None]

    # Upgrade: a new spec only, no daemon is bounced.
    c.configure(3, NEW)
    wait_all_on(c, NEW)
    assert dump_v3(c, 1, NEW) == ["/hello", "world"]
    assert all(c.get("hello", n) == "world" for n in (1, 2, 3))
    assert c.ctl("get").stdout.strip().splitlines()[-1] == f'member_count:3 etcd_version:"{NEW}"'

    # Downgrade: logical again; the key stays readable through the v2 API and the v3 one.
    c.configure(3, OLD)
    wait_all_on(c, OLD)
    assert all(c.get("hello", n) == "world" for n in (1, 2, 3))
    assert c.get3("/hello", 2) == "world"
    assert c.ctl("list-commands").stdout.strip() == ""
    assert [d.proc.pid for d in c.daemons if d.proc is not None] == pids
    assert all(d.running for d in c.daemons)
