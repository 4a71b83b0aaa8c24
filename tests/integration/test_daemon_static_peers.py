"""Daemons that share no discovery folder find each other by address alone: `--peers` (with
mutual TLS), the original's `--static-config`, and kops' external volumes with a seeds folder on
each host. Each cluster forms and grows with real etcd on 127.X.Y.n."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Cluster, Daemon, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"
MARKER = "please-create-new-cluster"


@pytest.fixture(autouse=True)
def _need_etcd() -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")


def assert_no_discovery_folder(c: Cluster) -> None:
    assert not (c.root / "discovery").exists()
    for d in c.daemons:
        assert not (Path("/tmp/discovery") / d.peer_id()).exists(), "the default shared folder is not used"


def names(members: list[dict[str, object]]) -> list[str]:
    return sorted(str(m["name"]) for m in members)


def test_peers_named_by_address_form_and_grow_under_tls(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(3, tls=True, discovery_store=False)
    first, second, third = c.daemons
    first.args.append(f"--peers={first.ip},{second.ip}")
    second.args.append(f"--peers={first.ip},{second.ip}")
    third.args.append(f"--peers={first.ip}")  # knows only the first: hears of the second from it
    c.configure(1, VERSION)
    c.start(1, 2)
    c.wait_members(1)
    c.put("hello", "world")

    c.start(3)
    c.configure(3, VERSION)
    c.wait_members(3)
    assert all(c.get("hello", n) == "world" for n in (1, 2, 3))
    assert f"peer {second.peer_id()} is healthy" in third.log()
    assert f"peer {third.peer_id()} is healthy" in second.log()
    assert_no_discovery_folder(c)


def test_static_config_creates_its_fixed_cluster_from_the_marked_data_dirs(
    make_cluster: Callable[..., Cluster],
) -> None:
    c = make_cluster(3, discovery_store=False)
    nodes = [{"id": f"etcd-{d.n}", "ip": [d.ip]} for d in c.daemons]
    static = json.dumps({"etcdVersion": VERSION, "nodes": nodes})
    for d in c.daemons:
        d.args.append(f"--static-config={static}")
        d.data_dir.mkdir(parents=True)
        (d.data_dir / MARKER).touch()
    c.start(1, 2)  # a quorum of the three nodes creates the cluster, with no ctl at all
    members = c.wait_members(2, on=[1, 2])
    assert names(members) == ["etcd-1", "etcd-2"], "each host took the id listed with its address"
    c.put("hello", "world")
    c.start(3)
    assert names(c.wait_members(3)) == ["etcd-1", "etcd-2", "etcd-3"]
    assert c.get("hello", 3) == "world"

    leader = c[1]  # the lowest id
    assert not (leader.data_dir / MARKER).exists(), "creating the cluster took the leader's marker"
    wait_for("a backup in the store", lambda: c.ctl("list-backups").stdout.split(), timeout=60)
    assert c.ctl("get", check=False).returncode == 1, "the spec lives in the flag, not in the store"
    assert_no_discovery_folder(c)


def host_folders(c: Cluster, d: Daemon) -> tuple[Path, Path]:
    """This host's /mnt/disks and its seeds folder."""
    return c.root / f"host{d.n}" / "disks", c.root / f"host{d.n}" / "seeds"


def test_kops_external_volumes_with_a_seeds_folder_per_host(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(3, discovery_store=False)
    for d in c.daemons:
        disks, seeds = host_folders(c, d)
        d.data_dir = disks / f"test--main--{d.n}" / "mnt"
        d.data_dir.mkdir(parents=True)
        seeds.mkdir(parents=True)
        d.args += [
            "--volume-provider=external",
            "--volume-tag=test--main--",
            f"--volumes-dir={disks}",
            f"--seeds-dir={seeds}",
        ]
    (host_folders(c, c[2])[1] / c[1].ip).touch()  # the second host names the first; the first names nobody
    c.configure(3, VERSION)
    c.start()
    members = c.wait_members(2, on=[1, 2])
    assert names(members) == ["test--main--1", "test--main--2"], "the volume folder's name is the member name"
    c.put("hello", "world")

    (host_folders(c, c[3])[1] / c[2].ip).touch()  # read at the next discovery poll
    assert names(c.wait_members(3)) == ["test--main--1", "test--main--2", "test--main--3"]
    assert c.get("hello", 3) == "world"
    assert c[3].peer_id() == "test--main--3"
    assert_no_discovery_folder(c)
