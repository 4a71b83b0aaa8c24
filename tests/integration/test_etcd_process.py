"""The etcd child process: stray detection, parent death, stop timing, early exit, cancellation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
from etcd_helpers import START_TIMEOUT, binaries_or_skip, client_url, launch, running, wait_serving

from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdProcessExited, EtcdUnavailable
from etcdmgr.etcd.process import EtcdProcess
from etcdmgr.etcd.stray import kill_stray_etcd

pytestmark = pytest.mark.etcd
VERSION = "3.5.30"
TESTS = Path(__file__).resolve().parent.parent


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat from field 3 on (or [] when gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rindex(")") + 2 :].split()


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    return _stat(pid)[:1] not in ([], ["Z"])


def _start_time(pid: int) -> int:
    return int(_stat(pid)[19])


async def _gone(pid: int, within: float) -> float:
    """Seconds until `pid` (not our child) exits."""
    t0 = time.monotonic()
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return 0.0
    try:
        with trio.fail_after(within):
            await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    return time.monotonic() - t0


async def test_kill_stray_etcd(tmp_path: Path) -> None:
    binaries = binaries_or_skip(VERSION)
    async with running(launch(binaries, tmp_path, "m1", "127.0.55.31")) as proc:
        record = json.loads(proc.pid_file.read_text())
        assert record["pid"] == proc.pid and record["etcd"] == str(binaries.etcd)
        assert await kill_stray_etcd(proc.pid_file) is True
        assert await proc.wait_exited() == -signal.SIGTERM  # etcd re-raises SIGTERM after a clean stop
        assert not proc.pid_file.exists()
        assert await kill_stray_etcd(proc.pid_file) is False


async def test_kill_stray_spares_other_processes(tmp_path: Path) -> None:
    binaries = binaries_or_skip(VERSION)
    pid_file = tmp_path / "etcd.pid"
    sleeper = await trio.lowlevel.open_process(["sleep", "60"])
    try:
        start_time = _start_time(sleeper.pid)
        for record in (
            {"pid": sleeper.pid, "startTime": start_time, "etcd": str(binaries.etcd)},  # not etcd
            {"pid": sleeper.pid, "startTime": start_time + 1, "etcd": "sleep"},  # pid reused
        ):
            pid_file.write_text(json.dumps(record))
            assert await kill_stray_etcd(pid_file) is False
            assert not pid_file.exists()
            assert sleeper.poll() is None
        pid_file.write_text("garbage")
        assert await kill_stray_etcd(pid_file) is False
    finally:
        sleeper.kill()
        await sleeper.wait()


CHILD = """
import sys, threading, trio
import trio._core._thread_cache
from pathlib import Path
from etcd_helpers import launch
from etcdmgr.etcd.process import OUTPUT_THREAD, EtcdProcess
from etcdmgr.etcd.versions import find_binaries

# trio's idle worker threads exit after 10 s; here after 0.2 s, so that the test need not wait.
trio._core._thread_cache.IDLE_TIMEOUT = 0.2

async def main() -> None:
    root = Path(sys.argv[2])
    member = launch(find_binaries(sys.argv[1]), root, "m1", sys.argv[3])
    proc = await EtcdProcess.start(member, root / "log")
    print(proc.pid, flush=True)
    # The thread copying etcd's output lives as long as etcd; the worker threads go.
    while any(t.name != OUTPUT_THREAD for t in threading.enumerate() if t is not threading.main_thread()):
        await trio.sleep(0.05)
    print("no worker threads left", flush=True)
    await trio.sleep_forever()

trio.run(main)
"""


@pytest.mark.slow
async def test_etcd_dies_with_its_daemon(tmp_path: Path) -> None:
    binaries = binaries_or_skip(VERSION)
    ip = "127.0.55.32"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    daemon = await trio.lowlevel.open_process(
        [sys.executable, "-c", CHILD, VERSION, str(tmp_path), ip], stdout=subprocess.PIPE, env=env
    )
    try:
        assert daemon.stdout is not None
        out = b""
        with trio.fail_after(START_TIMEOUT):
            while out.count(b"\n") < 2:
                out += await daemon.stdout.receive_some()
            pid = int(out.split(b"\n")[0])
            client = EtcdClient([client_url(ip)], binaries)
            await wait_serving(client, client_url(ip))
        # The parent-death signal follows the thread that forked: etcd must outlive the daemon's
        # worker threads. Killed with them, it would be gone well within a second.
        with trio.move_on_after(1.0) as outlived:
            await _gone(pid, 2.0)
        assert outlived.cancelled_caught, "etcd exited with the daemon's worker threads"
        assert await client.endpoint_health(client_url(ip))
        daemon.kill()
        print(f"etcd gone {await _gone(pid, 20):.2f} s after its daemon was killed")
    finally:
        daemon.kill()
        await daemon.wait()
    assert await kill_stray_etcd(tmp_path / "m1" / "etcd.pid") is False


async def test_stop_timing(tmp_path: Path) -> None:
    binaries = binaries_or_skip(VERSION)
    async with running(launch(binaries, tmp_path / "a", "m1", "127.0.55.33")) as proc:
        t0 = time.monotonic()
        await proc.stop()
        healthy_stop = time.monotonic() - t0
    print(f"stop of a healthy member: {healthy_stop:.2f} s")
    assert healthy_stop < 5

    # A member that lost quorum is slow to stop (it tries to reach its peer first): the grace
    # period ends it.
    cluster = {"m1": "127.0.55.34", "m2": "127.0.55.35"}
    m1, m2 = (launch(binaries, tmp_path / "b", n, ip, cluster=cluster) for n, ip in cluster.items())
    async with running(m1, healthy=False) as p1, running(m2) as p2:
        await p2.stop()
        t0 = time.monotonic()
        rc = await p1.stop(grace=1.0)
        took = time.monotonic() - t0
    print(f"stop of a member without quorum, grace 1 s: {took:.2f} s, exit code {rc}")
    assert took < 4
    assert rc == -signal.SIGKILL or took < 1.0

    # A hung etcd (here: stopped by SIGSTOP, so SIGTERM stays pending) gets SIGKILL after the grace.
    async with running(launch(binaries, tmp_path / "c", "m1", "127.0.55.39")) as proc:
        os.kill(proc.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        rc = await proc.stop(grace=0.5)
        took = time.monotonic() - t0
    assert rc == -signal.SIGKILL
    assert 0.5 <= took < 2.0


async def test_early_exit_is_reported(tmp_path: Path) -> None:
    binaries = binaries_or_skip(VERSION)
    member = launch(binaries, tmp_path, "m1", "127.0.55.36")
    (member.data_dir.parent).mkdir(parents=True)
    member.data_dir.write_text("a file where the data dir should be")
    async with running(member, healthy=False) as proc:
        with trio.fail_after(START_TIMEOUT), pytest.raises(EtcdProcessExited, match="exited with code 1"):
            await proc.wait_healthy(EtcdClient([client_url("127.0.55.36")], binaries))


async def test_wait_healthy_deadline_and_cancellation(tmp_path: Path) -> None:
    binaries = binaries_or_skip(VERSION)
    cluster = {"m1": "127.0.55.37", "m2": "127.0.55.38"}  # never gets quorum: never healthy
    member = launch(binaries, tmp_path, "m1", "127.0.55.37", cluster=cluster)
    procs: list[EtcdProcess] = []
    with trio.move_on_after(2.0):
        async with running(member, healthy=False) as proc:
            procs.append(proc)
            client = EtcdClient([client_url("127.0.55.37")], binaries)
            with trio.fail_after(1.0), pytest.raises(EtcdUnavailable, match="not healthy yet"):
                await proc.wait_healthy(client)
            await trio.sleep_forever()  # cancelled by move_on_after: leaving `running` stops etcd
    assert procs[0].returncode is not None
    assert not _alive(procs[0].pid)
