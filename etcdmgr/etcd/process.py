"""The etcd child process: how one member is started (EtcdLaunch, build_env) and stopped.

etcd is configured only through ETCD_* environment variables, never flags, so that variables
already set in the daemon's environment can override what we set (as etcd-manager allows)
without etcd refusing a flag/variable conflict.

A started etcd must never outlive a dead daemon unnoticed: it gets a parent-death signal, and
its pid is written to a pid file so that a restarted daemon can stop a stray one
(`kill_stray_etcd`).
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import math
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

import trio

from etcdmgr.etcd._tool import budget
from etcdmgr.etcd.errors import EtcdError, EtcdProcessExited, EtcdUnavailable
from etcdmgr.etcd.versions import EtcdBinaries, has_v2_api, version_key
from etcdmgr.model.tls import TLSFiles

if TYPE_CHECKING:
    from etcdmgr.etcd.client import EtcdClient

log = logging.getLogger(__name__)

# A member without quorum can take 10-20 s to exit after SIGTERM; killing it earlier is safe
# (etcd is crash-consistent) but loses the clean shutdown.
DEFAULT_STOP_GRACE = 15.0
_KILL_WAIT = 10.0
_POLL = 0.05
LOG_NAME = "etcd.log"
PID_NAME = "etcd.pid"

# Variables the manager must own: identity, membership, addresses and certificates change
# between starts (quarantine ports, restores, TLS reissue). A parent value for one of these is
# dropped (and logged), because inheriting e.g. a fixed port or initial cluster made the
# original's restores loop on a port conflict. ETCD_CONFIG_FILE and discovery are dropped because
# etcd would ignore our variables or bootstrap elsewhere. Every other ETCD_* in the parent wins.
MANAGED_ENV = frozenset(
    {
        "ETCD_NAME",
        "ETCD_DATA_DIR",
        "ETCD_WAL_DIR",
        "ETCD_LISTEN_PEER_URLS",
        "ETCD_INITIAL_ADVERTISE_PEER_URLS",
        "ETCD_LISTEN_CLIENT_URLS",
        "ETCD_ADVERTISE_CLIENT_URLS",
        "ETCD_INITIAL_CLUSTER",
        "ETCD_INITIAL_CLUSTER_STATE",
        "ETCD_INITIAL_CLUSTER_TOKEN",
        "ETCD_FORCE_NEW_CLUSTER",
        "ETCD_CONFIG_FILE",
        "ETCD_DISCOVERY",
        "ETCD_DISCOVERY_SRV",
        "ETCD_DISCOVERY_SRV_NAME",
        "ETCD_DISCOVERY_FALLBACK",
        "ETCD_DISCOVERY_PROXY",
        "ETCD_CERT_FILE",
        "ETCD_KEY_FILE",
        "ETCD_TRUSTED_CA_FILE",
        "ETCD_CLIENT_CERT_AUTH",
        "ETCD_AUTO_TLS",
        "ETCD_PEER_CERT_FILE",
        "ETCD_PEER_KEY_FILE",
        "ETCD_PEER_TRUSTED_CA_FILE",
        "ETCD_PEER_CLIENT_CERT_AUTH",
        "ETCD_PEER_AUTO_TLS",
    }
)


@dataclass(frozen=True)
class EtcdLaunch:
    """Everything needed to start one member once."""

    name: str
    binaries: EtcdBinaries
    data_dir: Path
    listen_peer_urls: Sequence[str]
    advertise_peer_urls: Sequence[str]
    listen_client_urls: Sequence[str]
    advertise_client_urls: Sequence[str]
    initial_cluster: Mapping[str, Sequence[str]]  # member name -> its peer URLs
    initial_cluster_token: str
    initial_cluster_state: Literal["new", "existing"] = "new"
    enable_v2: bool = True  # only where the version has a v2 API
    peer_tls: TLSFiles | None = None
    client_tls: TLSFiles | None = None
    force_new_cluster: bool = False
    listen_metrics_urls: Sequence[str] = field(default_factory=tuple)


def format_initial_cluster(initial_cluster: Mapping[str, Sequence[str]]) -> str:
    """{'a': ['http://x:2380']} -> 'a=http://x:2380' (a name repeats once per URL)."""
    return ",".join(f"{name}={url}" for name, urls in initial_cluster.items() for url in urls)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _our_env(launch: EtcdLaunch) -> dict[str, str]:
    env = {
        "ETCD_NAME": launch.name,
        "ETCD_DATA_DIR": str(launch.data_dir),
        "ETCD_LISTEN_PEER_URLS": ",".join(launch.listen_peer_urls),
        "ETCD_INITIAL_ADVERTISE_PEER_URLS": ",".join(launch.advertise_peer_urls),
        "ETCD_LISTEN_CLIENT_URLS": ",".join(launch.listen_client_urls),
        "ETCD_ADVERTISE_CLIENT_URLS": ",".join(launch.advertise_client_urls),
        "ETCD_INITIAL_CLUSTER": format_initial_cluster(launch.initial_cluster),
        "ETCD_INITIAL_CLUSTER_STATE": launch.initial_cluster_state,
        "ETCD_INITIAL_CLUSTER_TOKEN": launch.initial_cluster_token,
    }
    version = launch.binaries.version
    if has_v2_api(version):
        env["ETCD_ENABLE_V2"] = _bool(launch.enable_v2)
    if version_key(version) >= (3, 4, 0):
        # 3.4 defaults to capnslog and 3.5 rejects it: one log format from 3.4 on.
        env["ETCD_LOGGER"] = "zap"
    if launch.force_new_cluster:
        env["ETCD_FORCE_NEW_CLUSTER"] = "true"
    if launch.listen_metrics_urls:
        env["ETCD_LISTEN_METRICS_URLS"] = ",".join(launch.listen_metrics_urls)
    if t := launch.client_tls:
        env |= {
            "ETCD_CERT_FILE": str(t.cert),
            "ETCD_KEY_FILE": str(t.key),
            "ETCD_TRUSTED_CA_FILE": str(t.ca),
            "ETCD_CLIENT_CERT_AUTH": _bool(t.client_cert_auth),
        }
    if t := launch.peer_tls:
        env |= {
            "ETCD_PEER_CERT_FILE": str(t.cert),
            "ETCD_PEER_KEY_FILE": str(t.key),
            "ETCD_PEER_TRUSTED_CA_FILE": str(t.ca),
            "ETCD_PEER_CLIENT_CERT_AUTH": _bool(t.client_cert_auth),
        }
    return env


def build_env(launch: EtcdLaunch, parent_env: Mapping[str, str]) -> dict[str, str]:
    """The environment for etcd: the parent's, plus our ETCD_* settings where the parent has none.

    Parent ETCD_* variables win (e.g. ETCD_ENABLE_V2=false, ETCD_QUOTA_BACKEND_BYTES), except
    those in MANAGED_ENV, which are always ours (or absent).
    """
    env = {k: v for k, v in parent_env.items() if k not in MANAGED_ENV}
    for key, value in _our_env(launch).items():
        env.setdefault(key, value)
    return env


def ignored_parent_env(parent_env: Mapping[str, str]) -> list[str]:
    """Names of parent ETCD_* variables that build_env drops (worth a warning)."""
    return sorted(k for k in parent_env if k in MANAGED_ENV)


# --- parent-death signal ---------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _pdeathsig_preexec(parent_pid: int) -> None:
    """In the forked child: get SIGTERM when the forking thread dies; give up if it already has."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


# --- pid file ----------------------------------------------------------------------------------


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks): a pid plus this names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces or parentheses: split after its closing ')'.
    rest = stat[stat.rindex(")") + 2 :].split()
    if rest[0] == "Z":  # a zombie has exited already
        return None
    return int(rest[19])


def _cmdline0(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _write_pid_file(pid_file: Path, pid: int, launch: EtcdLaunch) -> None:
    record = {
        "pid": pid,
        "startTime": _start_time(pid),
        "etcd": str(launch.binaries.etcd),
        "dataDir": str(launch.data_dir),
    }
    tmp = pid_file.with_name(pid_file.name + ".tmp")
    tmp.write_text(json.dumps(record) + "\n")
    tmp.replace(pid_file)


def _read_pid_file(pid_file: Path) -> tuple[int, int | None, str] | None:
    try:
        record = json.loads(pid_file.read_text())
        return int(record["pid"]), record.get("startTime"), str(record["etcd"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_ours(pid: int, start_time: int | None, etcd: str) -> bool:
    """Is `pid` still the etcd we recorded (not a reused pid, not an exited one)?"""
    return start_time is not None and _start_time(pid) == start_time and _cmdline0(pid) == etcd


async def kill_stray_etcd(pid_file: Path, grace: float = DEFAULT_STOP_GRACE) -> bool:
    """Stop the etcd a previous daemon left running, as named by `pid_file`.

    Only a process whose pid, start time and binary all match the record is signalled, so a
    reused pid is never killed. Returns True when a stray was found and stopped. The pid file
    is removed in any case.
    """
    pidfd = _open_stray(pid_file)
    if pidfd is None:
        return False
    try:
        with trio.CancelScope(shield=True):
            await _terminate_pidfd(pidfd, grace)
    finally:
        os.close(pidfd)
    return True


def _open_stray(pid_file: Path) -> int | None:
    """A pidfd for the stray etcd named by `pid_file`, or None; the pid file is removed."""
    record = _read_pid_file(pid_file)
    pid_file.unlink(missing_ok=True)
    if record is None:
        return None
    pid, start_time, etcd = record
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    # Checked after opening: from here on the pidfd names this very process, even if it exits
    # and its pid is reused, so the signals below cannot hit another process.
    if not _is_ours(pid, start_time, etcd):
        os.close(pidfd)
        return None
    log.warning("stopping stray etcd pid %d (%s) from %s", pid, etcd, pid_file)
    return pidfd


async def _terminate_pidfd(pidfd: int, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, _KILL_WAIT)):
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            return
        with trio.move_on_after(wait):
            await trio.lowlevel.wait_readable(pidfd)  # readable once the process has exited
            return
    raise EtcdError("stray etcd did not exit after SIGKILL")


# --- the process ---------------------------------------------------------------------------------


def _spawn(
    launch: EtcdLaunch, env: dict[str, str], log_path: Path, pid_file: Path
) -> subprocess.Popen[bytes]:
    """Fork etcd, output appended to `log_path`, and record it in `pid_file`.

    Runs on the thread that runs trio, not in a worker thread as trio.lowlevel.open_process
    does: the parent-death signal fires when the *forking thread* exits, and trio's idle
    worker threads exit after a few seconds. A fork takes milliseconds.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    launch.data_dir.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with log_path.open("ab") as out:
        out.write(
            f"--- {stamp} etcdmgr starts etcd {launch.binaries.version} name={launch.name} "
            f"state={launch.initial_cluster_state} data={launch.data_dir}\n".encode()
        )
        out.flush()
        popen = subprocess.Popen(
            [str(launch.binaries.etcd)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=launch.data_dir.parent,
            # Own session: a Ctrl-C at the daemon's terminal reaches the daemon only, which then
            # stops etcd in order.
            start_new_session=True,
            preexec_fn=functools.partial(_pdeathsig_preexec, os.getpid()),
        )
    _write_pid_file(pid_file, popen.pid, launch)
    return popen


class EtcdProcess:
    """One running etcd child. Start with `await EtcdProcess.start(...)`; stop with `stop()`
    (or use it as an async context manager, which stops it on exit, even when cancelled)."""

    def __init__(self, launch: EtcdLaunch, popen: subprocess.Popen[bytes], log_path: Path, pid_file: Path):
        self.launch = launch
        self.log_path = log_path
        self.pid_file = pid_file
        self._popen = popen
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
        `log_dir/etcd.log`; its pid goes to `pid_file` (default: `etcd.pid` beside the data dir).
        """
        parent = dict(os.environ if parent_env is None else parent_env)
        if ignored := ignored_parent_env(parent):
            log.warning("ignoring %s from the environment: etcdmgr sets these itself", ", ".join(ignored))
        pid_file = pid_file or launch.data_dir.parent / PID_NAME
        log_path = log_dir / LOG_NAME
        popen = _spawn(launch, build_env(launch, parent), log_path, pid_file)
        log.info("started etcd %s pid %d name=%s", launch.binaries.version, popen.pid, launch.name)
        await trio.lowlevel.checkpoint()
        return cls(launch, popen, log_path, pid_file)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """None while running; else the exit code (negative: killed by that signal)."""
        rc = self._popen.poll()
        if rc is not None:
            self._forget_pid_file()
        return rc

    async def wait_exited(self) -> int:
        """Wait until etcd has exited; return its exit code."""
        async with self._wait_lock:  # trio allows one waiter per fd; the lock queues the others
            while (rc := self._popen.poll()) is None:
                await trio.lowlevel.wait_readable(self._pidfd)
            if self._pidfd >= 0:
                os.close(self._pidfd)
                self._pidfd = -1
            self._forget_pid_file()
            return rc

    async def stop(self, grace: float = DEFAULT_STOP_GRACE) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds; return the exit code.

        Shielded: a cancelled caller still leaves no etcd behind.
        """
        with trio.CancelScope(shield=True):
            rc = await self._terminate(grace)
        return rc

    async def _terminate(self, grace: float) -> int:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, _KILL_WAIT)):
            if self.returncode is not None:
                break
            if sig == signal.SIGKILL:
                log.warning("etcd pid %d ignored SIGTERM for %.0f s; killing it", self.pid, grace)
            self._popen.send_signal(sig)  # a no-op once reaped, so never hits a reused pid
            with trio.move_on_after(wait):
                return await self.wait_exited()
        if self.returncode is None:
            raise EtcdError(f"etcd pid {self.pid} did not exit after SIGKILL")
        return await self.wait_exited()

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

    def _forget_pid_file(self) -> None:
        record = _read_pid_file(self.pid_file)
        if record is not None and record[0] == self.pid:
            self.pid_file.unlink(missing_ok=True)

    async def __aenter__(self) -> EtcdProcess:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
