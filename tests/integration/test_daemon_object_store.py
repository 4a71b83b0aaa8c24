"""Daemons on hosts that share no folder: the backup store and discovery in S3 (moto's server on
loopback, reached through kops' S3_* variables), each daemon with its own data dir and nothing
else in common. The walkthrough's steps: create one member, grow to three, a backup, then
disaster recovery with restore-backup; `dump` of the backup from the bucket. And a daemon whose store fails keeps running and says why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable

import pytest
from harness import Cluster, wait_for
from object_servers import BUCKET, Server, closed_port, unique_prefix

from etcdmgr.controller.plan import ZERO_MEMBERS
from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow, pytest.mark.long]
VERSION = "3.5.30"


def in_object_store(c: Cluster, store: str, discovery: str) -> None:
    """Point every daemon (and ctl) at the object store instead of the cluster's folders."""
    c.store_url = store
    for d in c.daemons:
        d.args = [
            f"--backup-store={store}"
            if a.startswith("--backup-store=")
            else f"--discovery-store={discovery}"
            if a.startswith("--discovery-store=")
            else a
            for a in d.args
        ]


def walkthrough(
    c: Cluster, stored: Callable[[str], bool], discovered: Callable[[], bool] = lambda: True
) -> str:
    """The walkthrough's steps on daemons that share no folder: create one member, grow to
    three, a backup (in the object store), disaster recovery with restore-backup. The backup's name."""
    c.configure(1, VERSION)
    c.start()
    c.wait_members(1, timeout=120)
    wait_for("every daemon to find the others", discovered, timeout=60)
    c.configure(3, VERSION)
    c.wait_members(3, timeout=180)
    c.put("hello", "world")
    backup = c.backups_after_writes(timeout=120)[-1]
    assert stored(backup), "the backup is in the object store"
    assert not (c.root / "backups").exists() and not (c.root / "discovery").exists(), "no folder in common"

    c.stop_all()
    for d in c.daemons:
        shutil.rmtree(d.data_dir)
    c.start()
    wait_for("the zero-members line", lambda: any(ZERO_MEMBERS in d.log() for d in c.daemons), timeout=120)
    c.ctl("restore-backup", backup)
    c.wait_members(3, timeout=240)
    assert all(c.get("hello", n) == "world" for n in (1, 2, 3))
    return backup


def test_three_hosts_sharing_only_s3(
    make_cluster: Callable[..., Cluster], moto_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)  # the daemons and ctl inherit them, as on real hosts
    prefix = unique_prefix()
    raw = moto_server.raw(prefix)
    c = make_cluster(3, extra_args=["--backup-interval=3s"])
    in_object_store(c, f"s3://{BUCKET}/{prefix}/backups", f"s3://{BUCKET}/{prefix}/discovery")

    def discovered() -> bool:
        return len([k for k in raw.keys() if k.startswith("discovery/")]) == 3

    backup = walkthrough(c, lambda name: f"backups/{name}/_etcd_backup.meta" in raw.keys(), discovered)
    assert "control/etcd-cluster-created" in [k.removeprefix("backups/") for k in raw.keys()]

    # `dump` reads the backup from the bucket without any cluster.
    dumped = subprocess.run(
        [*c.command, "dump", f"--backup-store={c.store_url}", backup],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [json.loads(line) for line in dumped.stdout.splitlines() if line.strip()]
    assert any(r.get("key") == "/hello" and r.get("value") == "world" for r in rows), dumped.stdout[:500]


def test_a_daemon_whose_store_fails_keeps_running_and_says_why(
    make_cluster: Callable[..., Cluster], moto_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    c = make_cluster(2)
    in_object_store(c, "s3://no-such-bucket/backups", f"s3://{BUCKET}/{unique_prefix()}/discovery")
    # The second daemon's stores sit behind a closed port: unreachable.
    unreachable = f"http://127.0.0.1:{closed_port()}"
    c[2].args = [a.replace("s3://no-such-bucket/backups", "s3://bucket/backups") for a in c[2].args]
    c[2].args = [
        a.replace(f"--discovery-store=s3://{BUCKET}/", "--discovery-store=s3://bucket/") for a in c[2].args
    ]
    c[1].start()
    monkeypatch.setenv("S3_ENDPOINT", unreachable)
    c[2].start()
    wait_for(
        "the first daemon to say its bucket is missing",
        lambda: "backup store s3://no-such-bucket/backups: no such bucket 'no-such-bucket'" in c[1].log(),
        timeout=60,
    )
    wait_for(
        "the second daemon to say its endpoint is unreachable",
        lambda: "discovery: discovery store s3://bucket/" in c[2].log()
        and "endpoint unreachable" in c[2].log()
        and unreachable in c[2].log(),
        timeout=60,
    )
    wait_for("a second discovery warning", lambda: c[2].log().count("endpoint unreachable") >= 2, timeout=30)
    assert c[1].running and c[2].running
    assert "credentials: S3_ACCESS_KEY_ID=test (with S3_ENDPOINT)" in c[1].log()


def test_three_hosts_named_by_address_with_the_store_in_azure(
    make_cluster: Callable[..., Cluster], azurite_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No discovery store at all: the daemons are named by address (--peers); the backup store
    is an Azure Blob container (Azurite)."""
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    for name, value in azurite_server.env.items():
        monkeypatch.setenv(name, value)
    prefix = unique_prefix()
    raw = azurite_server.raw(prefix)
    c = make_cluster(3, discovery_store=False, extra_args=["--backup-interval=3s"])
    in_object_store(c, azurite_server.url(prefix), "unused: there is no --discovery-store")
    for d in c.daemons:
        d.args.append(f"--peers={','.join(o.ip for o in c.daemons)}")

    walkthrough(c, lambda name: f"{name}/_etcd_backup.meta" in raw.keys())
