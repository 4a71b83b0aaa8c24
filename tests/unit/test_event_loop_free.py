"""Host work never runs on the event loop's thread: every fsync, key generation and
`etcd --version` of these async paths happens in a worker thread."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import ec

from etcdmgr.cli.pki_cmd import main as pki_main
from etcdmgr.etcd.launch import EtcdLaunch
from etcdmgr.etcd.process import EtcdProcess
from etcdmgr.etcd.versions import EtcdBinaries, installed_binaries
from etcdmgr.model import EtcdCluster, EtcdNode, EtcdState
from etcdmgr.node.config import NodeConfig
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.service import NodeService
from etcdmgr.node.state_file import write_state


@dataclass
class HostCalls:
    """Which blocking calls ran, and which of them on the loop's thread (the test's own)."""

    loop_thread: int = field(default_factory=threading.get_ident)
    made: list[str] = field(default_factory=list)
    on_loop: list[str] = field(default_factory=list)

    def watch(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
        real: Callable[..., Any] = getattr(owner, name)

        def watched(*args: Any, **kwargs: Any) -> Any:
            self.made.append(name)
            if threading.get_ident() == self.loop_thread:
                self.on_loop.append(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, watched)


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Callable[[], HostCalls]:
    """Call it once the test's own setup is done: from then on the calls are watched."""

    def start() -> HostCalls:
        calls = HostCalls()
        calls.watch(monkeypatch, os, "fsync")
        calls.watch(monkeypatch, ec, "generate_private_key")
        calls.watch(monkeypatch, subprocess, "run")  # how `etcd --version` is asked
        return calls

    return start


@pytest.fixture
def fake_etcd(tmp_path: Path) -> Path:
    """A folder of etcd-v3.5.30 binaries that exit at once: these tests are about our side."""
    bin_dir = tmp_path / "bin"
    (bin_dir / "etcd-v3.5.30").mkdir(parents=True)
    for name in ("etcd", "etcdctl"):
        (bin_dir / "etcd-v3.5.30" / name).symlink_to("/bin/true")
    return bin_dir


async def test_etcd_version_is_asked_in_a_thread(tmp_path: Path, host: Callable[[], HostCalls]) -> None:
    bin_dir = tmp_path / "direct"
    bin_dir.mkdir()
    for name in ("etcd", "etcdctl"):
        (bin_dir / name).write_text("#!/bin/sh\necho 'etcd Version: 3.6.2'\n")
        (bin_dir / name).chmod(0o755)
    calls = host()
    assert list(await installed_binaries([bin_dir])) == ["3.6.2"]
    assert calls.made == ["run"] and calls.on_loop == []


async def test_the_pid_file_is_synced_in_a_thread(
    tmp_path: Path, fake_etcd: Path, host: Callable[[], HostCalls]
) -> None:
    etcd = fake_etcd / "etcd-v3.5.30" / "etcd"
    launch = EtcdLaunch(
        name="m1",
        binaries=EtcdBinaries("3.5.30", etcd, etcd, None),
        data_dir=tmp_path / "m1" / "data",
        listen_peer_urls=["http://127.0.0.1:2380"],
        advertise_peer_urls=["http://127.0.0.1:2380"],
        listen_client_urls=["http://127.0.0.1:4001"],
        advertise_client_urls=["http://127.0.0.1:4001"],
        initial_cluster={"m1": ["http://127.0.0.1:2380"]},
        initial_cluster_token="t",
    )
    calls = host()
    proc = await EtcdProcess.start(launch, tmp_path)
    assert await proc.wait_exited() == 0
    assert "fsync" in calls.made and calls.on_loop == []


async def test_a_node_starting_its_etcd_stays_off_the_loop(
    tmp_path: Path, fake_etcd: Path, host: Callable[[], HostCalls]
) -> None:
    """Loading the state, finding the binaries, issuing etcd's certificates (keys generated,
    files synced) and writing the pid file."""
    pki = tmp_path / "pki"
    assert pki_main(["init", f"--pki-dir={pki}"]) == 0
    me = EtcdNode("m1", ("https://127.0.0.1:2380",), ("https://127.0.0.1:4001",), ("https://127.0.0.1:8001",))
    config = NodeConfig(
        address="127.0.0.1",
        etcd_address="127.0.0.1",
        peer_urls=me.peer_urls,
        client_urls=me.client_urls,
        quarantine_client_urls=me.quarantined_client_urls,
        pki_dir=pki,
        etcd_bin_dirs=(fake_etcd,),
    )
    layout = DataLayout(tmp_path / "data")
    write_state(layout.state, EtcdState(EtcdCluster("token", (me,)), "3.5.30"))
    layout.etcd_data("token").mkdir(parents=True)
    node = NodeService(config, layout, "m1")
    calls = host()

    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        nursery.cancel_scope.cancel()
    assert (layout.pki("token") / "peers" / "me.key").exists()
    assert {"fsync", "generate_private_key"} <= set(calls.made)
    assert calls.on_loop == []
