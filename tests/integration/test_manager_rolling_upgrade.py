"""Upgrading etcdmgr itself host by host: daemons of the previous release beside this one."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import ROOT, Cluster, Daemon, wait_for
from previous_release import previous_release_command
from writer import Writer

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"


@pytest.fixture(autouse=True)
def _need_etcd() -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")


def etcd_pid(d: Daemon) -> int | None:
    """The pid of the etcd serving daemon d's data dir, found by its environment in /proc."""
    marker = f"ETCD_DATA_DIR={d.data_dir}/".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ:
            return int(entry.name)
    return None


def test_managers_replaced_one_at_a_time_under_writes(make_cluster: Callable[..., Cluster]) -> None:
    old = previous_release_command()
    c = make_cluster(3, command=old)
    new = [sys.executable, str(ROOT / "etcdmgr.py")]
    c.configure(3, VERSION)
    c.start()
    member_ids = {m["id"] for m in c.wait_members(3)}

    with Writer([d.client_url for d in c.daemons]) as writer:
        for d in c.daemons:
            others = {o.n: etcd_pid(o) for o in c.daemons if o is not d}
            assert all(others.values()), f"every other member runs etcd: {others}"
            d.stop()
            d.args = [*new, *d.args[len(old) :]]
            offset = len(d.log())
            d.start()
            assert {m["id"] for m in c.wait_members(3)} == member_ids, "the same members serve"
            wait_for(
                f"daemon {d.n} to follow a leader",
                lambda d=d, offset=offset: "following leader" in d.log()[offset:],  # type: ignore[misc]
                30,
            )
            assert {o.n: etcd_pid(o) for o in c.daemons if o is not d} == others, (
                f"replacing daemon {d.n} restarted no other member's etcd"
            )
        upgraded = len(writer.acked)
        wait_for("writes to go on after the upgrade", lambda: len(writer.acked) >= upgraded + 20, 30)

    assert writer.failed == [], f"{len(writer.failed)} writes failed on every member"
    assert writer.missing(c[1].client_url) == []
    for d in c.daemons:
        assert "Traceback" not in d.log(), d.log()[-3000:]
