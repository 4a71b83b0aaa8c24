"""A daemon run as systemd runs it (Type=notify, WatchdogSec=): a unix datagram socket of the test's
own plays systemd's part."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from harness import Cluster

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.5.30"
PEER_PORT = 8000


@pytest.fixture
def systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """An abstract datagram socket named in NOTIFY_SOCKET, with a 2 s watchdog, for daemons
    started by this test (they inherit the environment)."""
    name = f"etcdmgr-test-notify-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        yield sock


def receive(sock: socket.socket, until: Callable[[str], bool], timeout: float) -> list[str]:
    """Messages up to and including the first for which `until` holds."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if until(messages[-1]):
            return messages
    raise AssertionError(f"no such message within {timeout:.0f}s; got {messages}")


def test_ready_after_the_peer_api_serves_then_watchdog_pings_status_stopping_and_json_logs(
    make_cluster: Callable[..., Cluster], systemd: socket.socket
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(1, extra_args=["--log-format=json"])
    c.configure(1, VERSION)
    c.start()
    first = receive(systemd, lambda m: "READY=1" in m, timeout=60)
    assert first[-1].startswith("READY=1\nSTATUS=follower; etcd member "), first
    # Ready means the peer API answers: it accepts connections by then.
    socket.create_connection((c[1].ip, PEER_PORT), timeout=2).close()
    c.wait_members(1)
    later = receive(systemd, lambda m: "STATUS=leader; etcd member running" in m, timeout=60)
    start = time.monotonic()
    pings = receive(systemd, lambda m: m == "WATCHDOG=1" and time.monotonic() - start > 3, timeout=10)
    assert sum(m == "WATCHDOG=1" for m in pings) >= 3, "every half watchdog period (1 s)"

    etcd_pid = int(json.loads((c[1].data_dir / "etcd.pid").read_text())["pid"])
    etcd_env = open(f"/proc/{etcd_pid}/environ", "rb").read().split(b"\0")
    assert not [v for v in etcd_env if v.startswith((b"NOTIFY_SOCKET=", b"WATCHDOG_"))], "etcd never notifies"

    assert c[1].stop() == 0
    last = receive(systemd, lambda m: m == "STOPPING=1", timeout=5)
    assert [m for m in first + later + pings + last if m.startswith("READY=1")] == [first[-1]]
    # Every line the daemon wrote is one JSON object naming the node (once its id is read).
    lines = [json.loads(line) for line in c[1].log().splitlines()]
    assert [line["peer"] for line in lines[-5:]] == [c[1].peer_id()] * 5
    assert {line["peer"] for line in lines} == {"", c[1].peer_id()}
    assert any(line["leader"] and line.get("action") == "CreateCluster" for line in lines)
