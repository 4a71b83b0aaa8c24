"""The etcd child process: started from an EtcdLaunch, watched, and stopped.

A started etcd must never outlive a dead daemon unnoticed: it gets a parent-death signal, and
its pid goes to a pid file so that a restarted daemon can stop a stray one (etcd/stray.py).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import trio

from etcdmgr.etcd._tool import budget
from etcdmgr.etcd.errors import EtcdProcessExited, EtcdUnavailable
from etcdmgr.etcd.launch import EtcdLaunch, build_env, ignored_parent_env
from etcdmgr.etcd.output import RotatingLog, copy_output, output_pipe
from etcdmgr.etcd.stop import DEFAULT_STOP_GRACE, terminate
from etcdmgr.etcd.stray import PID_NAME, forget_pid_file, write_pid_file

if TYPE_CHECKING:
    from etcdmgr.etcd.client import EtcdClient

log = logging.getLogger(__name__)

LOG_NAME = "etcd.log"
OUTPUT_GRACE = 2.0  # seconds for etcd's last output to reach its log after it exited
OUTPUT_THREAD = "etcd output"  # the thread copying etcd's output to its log, for the life of etcd

# etcd must get a parent-death signal. It can only be asked for in the child, after the fork and
# before etcd is exec'ed, and Python code there (preexec_fn) is unsafe while threads exist. So a
# tiny program asks for it and then execs etcd in the same process, which keeps the pid the pid
# file records: util-linux's setpriv (about 1 ms), else Python itself (about 12 ms).
_PDEATHSIG_EXEC = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(1, 15, 0, 0, 0)\n"  # PR_SET_PDEATHSIG, SIGTERM
    "os.getppid() == int(sys.argv[1]) or os._exit(1)\n"  # the daemon died before that
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


@functools.cache
def _setpriv() -> str | None:
    return shutil.which("setpriv")


def with_parent_death_signal(argv: list[str]) -> list[str]:
    """`argv`, run so that it gets SIGTERM when the thread that forks it exits."""
    if setpriv := _setpriv():
        return [setpriv, "--pdeathsig", "TERM", "--", *argv]
    return [sys.executable, "-I", "-S", "-c", _PDEATHSIG_EXEC, str(os.getpid()), *argv]


def _spawn(launch: EtcdLaunch, env: dict[str, str], output: int) -> subprocess.Popen[bytes]:
    """Start etcd, its output (stdout and stderr) to the pipe `output`.

    Forks on the thread that runs trio, not in a worker thread as trio.lowlevel.open_process
    does: the parent-death signal fires when the *forking thread* exits, and trio's idle
    worker threads exit after a few seconds. Without preexec_fn the fork is a vfork: well
    under a millisecond on this thread.
    """
    launch.data_dir.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        with_parent_death_signal([str(launch.binaries.etcd)]),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        cwd=launch.data_dir.parent,
        # Own session: a Ctrl-C at the daemon's terminal reaches the daemon only, which then
        # stops etcd in order.
        start_new_session=True,
    )


def _log_output(launch: EtcdLaunch, log_path: Path) -> tuple[int, trio.Event]:
    """The pipe etcd writes to (its write end) and an event set once all it wrote is in
    `log_path` (etcd/output.py); the header line of this start goes there first."""
    log = RotatingLog(log_path)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with contextlib.suppress(OSError):  # a log that cannot be written never keeps etcd down
        log.write(
            f"--- {stamp} etcdmgr starts etcd {launch.binaries.version} name={launch.name} "
            f"state={launch.initial_cluster_state} data={launch.data_dir}\n".encode()
        )
    read_fd, write_fd = output_pipe()
    copied, token = trio.Event(), trio.lowlevel.current_trio_token()

    def done(_: object) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # the daemon is exiting
            token.run_sync_soon(copied.set)

    trio.lowlevel.start_thread_soon(functools.partial(copy_output, read_fd, log), done, name=OUTPUT_THREAD)
    return write_fd, copied


class EtcdProcess:
    """One running etcd child. Start with `await EtcdProcess.start(...)`; stop with `stop()`
    (or use it as an async context manager, which stops it on exit, even when cancelled)."""

    def __init__(
        self,
        launch: EtcdLaunch,
        popen: subprocess.Popen[bytes],
        log_path: Path,
        pid_file: Path,
        output_copied: trio.Event,
    ):
        self.launch = launch
        self.log_path = log_path
        self.pid_file = pid_file
        self._popen = popen
        self._output_copied = output_copied
        self._pidfd = os.pidfd_open(popen.pid)
        self._wait_lock = trio.Lock()
        self.started_at = time.monotonic()

    @classmethod
    async def start(
        cls,
        launch: EtcdLaunch,
        log_dir: Path,
        *,
        pid_file: Path | None = None,
        parent_env: Mapping[str, str] | None = None,
    ) -> EtcdProcess:
        """Spawn etcd (it serves shortly after; see wait_healthy). Its output is appended to
        `log_dir/etcd.log` (rotated: etcd/output.py); its pid goes to `pid_file` (default:
        `etcd.pid` beside the data dir).
        """
        parent = dict(os.environ if parent_env is None else parent_env)
        if ignored := ignored_parent_env(parent):
            log.warning("ignoring %s from the environment: etcdmgr sets these itself", ", ".join(ignored))
        pid_file = pid_file or launch.data_dir.parent / PID_NAME
        log_path = log_dir / LOG_NAME
        output, copied = _log_output(launch, log_path)
        try:
            popen = _spawn(launch, build_env(launch, parent), output)
        finally:
            os.close(output)  # etcd holds the write end now: the copy ends when etcd does
        log.info("started etcd %s pid %d name=%s", launch.binaries.version, popen.pid, launch.name)
        proc = cls(launch, popen, log_path, pid_file, copied)
        # Shielded: a cancellation here would lose track of a running etcd. It reaches the caller
        # at its next checkpoint instead, once the caller holds the process.
        with trio.CancelScope(shield=True):
            etcd, data_dir = launch.binaries.etcd, launch.data_dir
            try:
                await trio.to_thread.run_sync(write_pid_file, pid_file, popen.pid, etcd, data_dir)
            except OSError as e:
                # E.g. a full disk. etcd runs and is tracked (and has its parent-death signal);
                # failing here would leave it running unwatched, holding its ports against the
                # next start.
                log.warning(
                    "cannot write etcd's pid file %s (%s): etcd runs on, but a restarted daemon "
                    "will not find it if this daemon dies without stopping it",
                    pid_file,
                    e.strerror or e,
                )
        return proc

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """None while running; else the exit code (negative: killed by that signal)."""
        rc = self._popen.poll()
        if rc is not None:
            forget_pid_file(self.pid_file, self.pid)
        return rc

    async def wait_exited(self) -> int:
        """Wait until etcd has exited and its last output is in its log; return its exit code."""
        async with self._wait_lock:  # trio allows one waiter per fd; the lock queues the others
            while (rc := self._popen.poll()) is None:
                await trio.lowlevel.wait_readable(self._pidfd)
            if self._pidfd >= 0:
                os.close(self._pidfd)
                self._pidfd = -1
            forget_pid_file(self.pid_file, self.pid)
        # Bounded: a process etcd started could hold the pipe after etcd is gone.
        with trio.move_on_after(OUTPUT_GRACE):
            await self._output_copied.wait()
        return rc

    async def stop(self, grace: float = DEFAULT_STOP_GRACE) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds; return the exit code.

        Shielded: a cancelled caller still leaves no etcd behind.
        """

        def send(sig: signal.Signals) -> bool:
            if self.returncode is not None:
                return False
            self._popen.send_signal(sig)  # a no-op once reaped, so never hits a reused pid
            return True

        with trio.CancelScope(shield=True):
            await terminate(f"etcd pid {self.pid}", send, self.wait_exited, grace)
            rc = await self.wait_exited()
        return rc

    async def wait_healthy(self, client: EtcdClient, endpoint: str | None = None) -> float:
        """Wait until `endpoint` (default: the first advertised client URL) reports healthy.

        Returns the seconds since start. Bound it with the caller's own deadline: when that is
        near, raises EtcdUnavailable with the tail of etcd's log; raises EtcdProcessExited (also
        with the tail) when etcd exits meanwhile.
        """
        endpoint = endpoint or self.launch.advertise_client_urls[0]
        with trio.move_on_after(budget(math.inf)):
            while True:
                if (rc := self.returncode) is not None:
                    raise EtcdProcessExited(f"etcd exited with code {rc}:\n{self.log_tail()}")
                if await client.endpoint_health(endpoint):
                    return time.monotonic() - self.started_at
                await trio.sleep(0.1)
        raise EtcdUnavailable(f"etcd at {endpoint} is not healthy yet:\n{self.log_tail()}")

    def log_tail(self, lines: int = 15, max_bytes: int = 16384) -> str:
        """The last lines etcd wrote, for error messages."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
                data = f.read()
        except OSError:
            return ""
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    async def __aenter__(self) -> EtcdProcess:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
