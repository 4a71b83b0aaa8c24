"""sd_notify: one datagram to the socket systemd names; nothing without it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdmgr.ops import systemd
from etcdmgr.ops.systemd import notify, watchdog_seconds


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        yield sock, str(path)


def test_messages_arrive_as_one_datagram_each(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    assert notify("READY=1\nSTATUS=follower", {"NOTIFY_SOCKET": path})
    assert notify("WATCHDOG=1", {"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=follower"
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_an_abstract_socket() -> None:
    name = f"etcdmgr-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"READY=1"


def test_without_systemd_or_its_socket_nothing_is_sent(tmp_path: Path) -> None:
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": "relative/path"})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")}), "logged, never raised"


def test_the_watchdog_period_is_ours_only_when_systemd_meant_this_process() -> None:
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000"}, pid=7) == 30.0
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, pid=7) == 30.0
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"}, pid=7) is None
    assert watchdog_seconds({}, pid=7) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "0"}, pid=7) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "soon"}, pid=7) is None


def test_the_daemon_takes_the_variables_so_that_etcd_does_not_inherit_them(
    receiver: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = receiver
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid()), "X": "1"}
    monkeypatch.setattr(systemd, "_environ", {})
    systemd.adopt_environment(environ)
    assert environ == {"X": "1"}
    assert systemd.under_systemd() and systemd.watchdog_seconds() == 4.0
    assert notify("STOPPING=1")
    assert sock.recv(100) == b"STOPPING=1"
