"""The node keeps its etcd running: an etcd that exits at once is started again after a growing
pause, its failure is logged once with etcd's last lines and reported in GetInfo, and once etcd
runs again the report is gone. (A fake etcd: these tests are about our side.)"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from etcdmgr.etcd import process
from etcdmgr.model import EtcdCluster, EtcdmgrError, EtcdState
from etcdmgr.node import restarts, service
from etcdmgr.node.state_file import write_state
from etcdmgr.peer import methods
from etcdmgr.peer.calls import ReconfigureArgs

from .test_handlers import Node, make_node

TOKEN = "_x0-abcd"
FATAL = (
    '{"level":"fatal","ts":"2030-01-01T00:00:00.102Z","msg":"discovery failed",'
    '"error":"listen tcp 127.0.0.1:4001: bind: address already in use"}'
)


def fake_etcd(bin_dir: Path, body: str) -> None:
    """etcd-v3.5.30/etcd as a shell script; replaced whole, as a new install would be."""
    folder = bin_dir / "etcd-v3.5.30"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "etcdctl").exists():
        (folder / "etcdctl").symlink_to("/bin/true")
    new = folder / ".etcd.new"
    new.write_text(f"#!/bin/sh\n{body}\n")
    new.chmod(0o755)
    os.replace(new, folder / "etcd")


def member_node(tmp_path: Path) -> Node:
    node = make_node(tmp_path)
    node.service.bin_dirs = (tmp_path / "bin",)
    node.service.etcd.stable_after = 0.5
    write_state(node.layout.state, EtcdState(EtcdCluster(TOKEN, (node.service.me,)), "3.5.30"))
    node.layout.etcd_data(TOKEN).mkdir(parents=True)
    return node


async def info_when(node: Node, what: str, check: Any) -> dict[str, Any]:
    with trio.move_on_after(10):
        while True:
            info: dict[str, Any] = await node.call(methods.GET_INFO)
            if check(info):
                return info
            await trio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_crash_loop_is_retried_reported_once_and_clears_when_etcd_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(restarts, "BACKOFF_FIRST", 0.05)  # 0.05, 0.1, 0.2 ... instead of 1, 2, 4 ...
    fake_etcd(tmp_path / "bin", f"echo '{FATAL}' >&2\nexit 1")
    node = member_node(tmp_path)

    async with trio.open_nursery() as nursery:
        await nursery.start(node.service.run)
        looping = await info_when(
            node, "a reported crash loop", lambda i: "failed start 4 in a row" in i.get("etcdProblem", "")
        )
        assert looping["etcdRunning"] is False and looping["etcdState"] is not None
        assert looping["etcdProblem"].startswith("etcd exited with code 1")
        assert (
            "discovery failed: listen tcp 127.0.0.1:4001: bind: address already in use"
            in looping["etcdProblem"]
        )
        # etcd's last lines are in the daemon's log once; each repeat is one short line.
        assert caplog.text.count("Last lines of etcd's log") == 1
        assert caplog.text.count(FATAL) == 1
        assert "etcd failed to start again, the same way (3 in a row)" in caplog.text

        fake_etcd(tmp_path / "bin", "exec sleep 30")  # e.g. the port is free again
        running = await info_when(
            node, "etcd running again", lambda i: i["etcdRunning"] and "etcdProblem" not in i
        )
        assert running["etcdState"]["cluster"]["clusterToken"] == TOKEN
        assert "etcd runs again after" in caplog.text
        nursery.cancel_scope.cancel()


async def test_an_etcd_that_cannot_even_start_is_retried_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No binary of the state's version (e.g. removed by an upgrade of the host): retried until
    it is back."""
    monkeypatch.setattr(restarts, "BACKOFF_FIRST", 0.05)
    (tmp_path / "bin").mkdir()
    node = member_node(tmp_path)

    async with trio.open_nursery() as nursery:
        await nursery.start(node.service.run)
        looping = await info_when(node, "a reported start failure", lambda i: "etcdProblem" in i)
        assert "cannot start etcd: etcd 3.5.30 is not installed" in looping["etcdProblem"]
        fake_etcd(tmp_path / "bin", "exec sleep 30")
        await info_when(node, "etcd running", lambda i: i["etcdRunning"] and "etcdProblem" not in i)
        nursery.cancel_scope.cancel()
    assert caplog.text.count("cannot start etcd: etcd 3.5.30 is not installed") == 1


async def test_a_state_file_that_cannot_be_written_leaves_etcd_running_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """E.g. a full disk when the leader lifts the quarantine: the call fails, and etcd runs on
    as the state file (still the old one) says."""
    fake_etcd(tmp_path / "bin", "exec sleep 30")
    node = member_node(tmp_path)
    before = node.layout.state.read_bytes()

    def full_disk(path: Path, state: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async with trio.open_nursery() as nursery:
        await nursery.start(node.service.run)
        await info_when(node, "etcd running", lambda i: i["etcdRunning"])
        monkeypatch.setattr(service, "write_state", full_disk)
        with pytest.raises(EtcdmgrError, match=r"cannot write the state file .*: No space left on device"):
            await node.service.reconfigure(ReconfigureArgs(quarantined=True))
        info = await info_when(node, "etcd running again", lambda i: i["etcdRunning"])
        assert info["etcdState"]["quarantined"] is False and "etcdProblem" not in info
        nursery.cancel_scope.cancel()
    assert node.layout.state.read_bytes() == before


async def test_a_pid_file_that_cannot_be_written_leaves_one_etcd_running_and_watched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk as etcd starts: etcd was spawned, the pid file failed, and
    the node lost track of the etcd it had started, then started more that could not bind."""
    starts = tmp_path / "starts"
    fake_etcd(tmp_path / "bin", f"echo started >> {starts}\nexec sleep 30")
    node = member_node(tmp_path)

    def full_disk(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(process, "write_pid_file", full_disk)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.service.run)
        info = await info_when(node, "etcd running", lambda i: i["etcdRunning"])
        assert "etcdProblem" not in info
        await trio.sleep(1.0)  # longer than stable_after: a lost etcd would be started again
        assert starts.read_text().count("started") == 1
        assert "cannot write etcd's pid file" in caplog.text
        nursery.cancel_scope.cancel()
