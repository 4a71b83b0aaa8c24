"""A leader whose backup store cannot be read steps down, says why, and the next id leads; once
its store is back it leads again. Leadership follows progress, not only pings."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Cluster, Daemon, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"
STALL = 8.0


def point(link: Path, target: Path) -> None:
    """Make `link` a symlink to `target`, replacing what is there in one step."""
    tmp = link.with_name(link.name + ".new")
    tmp.symlink_to(target)
    os.replace(tmp, link)


def test_a_leader_whose_store_cannot_be_read_steps_down_and_the_next_id_leads(
    make_cluster: Callable[..., Cluster],
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(
        3,
        extra_args=[f"--leader-stall-timeout={STALL:g}s", "--store-timeout=2s", "--backup-interval=5s"],
    )
    # Each daemon reaches the one store through a link of its own, so that one daemon alone can
    # lose it (as a host loses a mount); root reads whatever the folder's mode.
    store = c.root / "backups"
    views = c.root / "views"
    views.mkdir(parents=True)
    for d in c.daemons:
        point(views / str(d.n), store)
        d.args = [
            f"--backup-store=file://{views / str(d.n)}/test" if a.startswith("--backup-store=") else a
            for a in d.args
        ]
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    first, second, third = sorted(c.daemons, key=Daemon.peer_id)
    wait_for("the lowest id to take a backup", lambda: "took backup" in first.log(), timeout=60)

    marks = {d.n: len(d.log()) for d in c.daemons}

    def since(d: Daemon) -> str:
        return d.log()[marks[d.n] :]

    point(views / str(first.n), c.root / "nowhere")
    lost = time.monotonic()
    wait_for("the next id to lead", lambda: "taking leadership" in since(second), timeout=6 * STALL)
    print(
        f"failover {time.monotonic() - lost:.1f}s after the leader lost its store (stall timeout {STALL:g}s)"
    )
    assert "control cycle failed: " in since(first) and "has gone away" in since(first)
    # It says so at its next loop; the others passed it over as soon as its pings said so.
    wait_for("the old leader to step down", lambda: "stepping down" in since(first), timeout=10)
    assert "stepping down: this node is not fit to lead (its control loop has made no progress for" in since(
        first
    )
    assert f"peer {second.peer_id()} leads next" in since(first)
    wait_for(
        "the third to pass it over", lambda: f"peer {first.peer_id()} is not fit to lead" in since(third), 5
    )
    wait_for("a backup by the new leader", lambda: "took backup" in since(second), timeout=30)
    assert c.healthy(first) and all(d.running for d in c.daemons)

    marks = {d.n: len(d.log()) for d in c.daemons}
    point(views / str(first.n), store)
    wait_for("the lowest id to lead again", lambda: "taking leadership" in since(first), timeout=6 * STALL)
    wait_for("the next id to give way", lambda: "giving up leadership" in since(second), timeout=10)
    wait_for(
        "the third to see it fit", lambda: f"peer {first.peer_id()} is fit to lead again" in since(third), 5
    )
    wait_for("a backup by the lowest id again", lambda: "took backup" in since(first), timeout=30)
    c.wait_members(3)


def test_the_lowest_id_without_a_usable_store_never_leads_and_the_next_id_does(
    make_cluster: Callable[..., Cluster],
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(3)
    for d, pid in zip(c.daemons, ("node-a", "node-b", "node-c"), strict=True):
        d.data_dir.mkdir(parents=True)
        (d.data_dir / "myid").write_text(pid)
    c[1].args = [
        "--backup-store=nosuch://bucket/test" if a.startswith("--backup-store=") else a for a in c[1].args
    ]
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3, timeout=120)  # node-a still serves its member: only leading is not for it
    assert "taking leadership" in c[2].log()
    assert "taking leadership" not in c[1].log()
    assert "peer node-a is not fit to lead: no usable backup store (nosuch://bucket/test)" in c[3].log()
