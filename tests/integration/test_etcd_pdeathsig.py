"""etcd's parent-death signal without preexec_fn: setpriv when installed, else a Python exec
wrapper. Either way the child keeps its pid (the pid file names etcd itself) and dies with the
daemon, even one killed with SIGKILL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent

# A stand-in daemon: starts `sleep` as the daemon starts etcd, prints its pid, then waits.
DAEMON = """
import subprocess, sys, time
from etcdmgr.etcd import process
if sys.argv[1] == "python":
    process._setpriv = lambda: None
child = subprocess.Popen(process.with_parent_death_signal(["/bin/sleep", "60"]), start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def _cmdline0(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.parametrize("wrapper", ["setpriv", "python"])
def test_the_child_keeps_its_pid_and_dies_with_a_killed_daemon(wrapper: str) -> None:
    if wrapper == "setpriv" and shutil.which("setpriv") is None:
        pytest.skip("util-linux setpriv is not installed")
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON, wrapper], stdout=subprocess.PIPE, env=env)
    try:
        assert daemon.stdout is not None
        pid = int(daemon.stdout.readline())
        deadline = time.monotonic() + 5
        while _cmdline0(pid) != "/bin/sleep":  # exec'ed in place: the pid is sleep's own
            assert time.monotonic() < deadline, f"pid {pid} is still {_cmdline0(pid)!r}"
            time.sleep(0.01)
        daemon.kill()
        daemon.wait()
        deadline = time.monotonic() + 5
        while _running(pid):
            assert time.monotonic() < deadline, "the child outlived its daemon"
            time.sleep(0.01)
    finally:
        daemon.kill()
        daemon.wait()
