"""The pid file beside etcd's data, and stopping an etcd that a previous daemon left running.

A pid alone may name another process after pid reuse, so the record also holds the process's
start time and binary; a stray is signalled only through a pidfd opened before that check, so
no signal can reach another process.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

import trio

from etcdmgr.etcd.stop import DEFAULT_STOP_GRACE, terminate
from etcdmgr.util.atomic import write_atomic

log = logging.getLogger(__name__)

PID_NAME = "etcd.pid"


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


def write_pid_file(pid_file: Path, pid: int, etcd: Path, data_dir: Path) -> None:
    """Record the etcd just started (blocking: it fsyncs)."""
    record = {"pid": pid, "startTime": _start_time(pid), "etcd": str(etcd), "dataDir": str(data_dir)}
    write_atomic(pid_file, json.dumps(record).encode() + b"\n", mode=0o600)


def _read_pid_file(pid_file: Path) -> tuple[int, int | None, str] | None:
    try:
        record = json.loads(pid_file.read_text())
        return int(record["pid"]), record.get("startTime"), str(record["etcd"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def forget_pid_file(pid_file: Path, pid: int) -> None:
    """Remove the pid file if it still names `pid` (a newer etcd may have replaced it)."""
    record = _read_pid_file(pid_file)
    if record is not None and record[0] == pid:
        pid_file.unlink(missing_ok=True)


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

    def send(sig: signal.Signals) -> bool:
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            return False
        return True

    async def exited() -> None:
        await trio.lowlevel.wait_readable(pidfd)  # readable once the process has exited

    try:
        with trio.CancelScope(shield=True):
            await terminate("stray etcd", send, exited, grace)
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
