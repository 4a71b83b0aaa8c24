"""A daemon started with ETCD_UNSAFE_NO_FSYNC=true exits at once (code 2, one line) unless
--allow-unsafe-etcd-env is given; then etcd gets it and the daemon says so loudly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Cluster

from etcdmgr.etcd.versions import find_binaries

VERSION = "3.5.30"  # the first release with --unsafe-no-fsync


def etcd_environ(data_dir: Path) -> list[str]:
    pid = json.loads((data_dir / "etcd.pid").read_text())["pid"]
    return Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")


def test_unsafe_etcd_settings_are_refused_unless_accepted(
    make_cluster: Callable[..., Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    monkeypatch.setenv("ETCD_UNSAFE_NO_FSYNC", "true")  # the daemons inherit it

    refused = make_cluster(1)[1]
    refused.start()
    assert refused.proc is not None and refused.proc.wait(30) == 2
    assert refused.log() == (
        "etcdmgr daemon: ETCD_UNSAFE_NO_FSYNC=true would weaken etcd's durability or safety (writes "
        "acknowledged before they are on disk, membership changes that lose quorum, a forced new "
        "cluster, unchecked peer certificates); unset it, or add --allow-unsafe-etcd-env to accept that\n"
    )
    assert not refused.data_dir.joinpath("myid").exists()

    c = make_cluster(1, extra_args=["--allow-unsafe-etcd-env"])
    c.configure(1, VERSION)
    c.start()
    c.wait_members(1)
    assert "--allow-unsafe-etcd-env: UNSAFE: etcd gets ETCD_UNSAFE_NO_FSYNC=true" in c[1].log()
    assert "ETCD_UNSAFE_NO_FSYNC=true" in etcd_environ(c[1].data_dir)
