"""Running daemons under floods from someone who reaches the peer port: a Ping poisoned with
75,000 ids, and 1,000 idle connections. The daemon stays healthy for its peers, no stranger's
name reaches the hosts file, and etcd is still restarted and the state file still written.

Every address a flood names is on the test's own loopback block.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from harness import ROOT, Cluster, Daemon, wait_for

from etcdmgr.etcd.versions import find_binaries
from etcdmgr.model import PeerEndpoint
from etcdmgr.peer import methods
from etcdmgr.peer.codec import MAX_FRAME, Request, encode_request
from etcdmgr.peer.directory import MAX_RECORDS
from etcdmgr.peer.transport import Plaintext, open_peer_client
from etcdmgr.pki import MANAGER_CA, client_ssl_context, issue_peer_tls_files, load_or_create_ca

pytestmark = [pytest.mark.slow]

VERSION = "3.4.23"
API_PORT = 8000
PEER_TIMEOUT = 4.0  # the daemon's default --peer-timeout
ATTACKER = "zz-attacker"
POISON = 75_000


async def in_thread(fn: Callable[[], Any]) -> Any:
    return await trio.to_thread.run_sync(fn)


def endpoint(d: Daemon) -> PeerEndpoint:
    return PeerEndpoint(d.ip, API_PORT)


def wait_all_healthy(c: Cluster) -> None:
    """Every daemon has seen every other one answer its pings."""
    wait_for("every daemon's id", lambda: all((d.data_dir / "myid").exists() for d in c.daemons), 20)
    ids = {d.n: d.peer_id() for d in c.daemons}
    for d in c.daemons:
        for n, pid in ids.items():
            if n != d.n:
                wait_for(
                    f"daemon {d.n} to see {n}", lambda d=d, pid=pid: f"peer {pid} is healthy" in d.log(), 30
                )


def poisoned_known(block: str) -> dict[str, Any]:
    """75,000 random ids (one sorts before every daemon's), and a well-known host name."""
    known: dict[str, Any] = {
        base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="): [
            {"ip": f"{block}.{100 + k % 150}", "port": 1000 + k // 150}
        ]
        for k in range(POISON)
    }
    known["-0evil-leader"] = [{"ip": f"{block}.66", "port": 1}]
    known["api.github.com"] = [{"ip": f"{block}.66", "port": 1}]
    return known


async def test_a_ping_poisoned_with_75000_ids_changes_nothing_that_matters(
    make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    hosts = tmp_path / "hosts"
    c = make_cluster(3, extra_args=[f"--hosts-file={hosts}"])  # insecure: anyone on loopback may call
    c.start()
    await in_thread(partial(wait_all_healthy, c))
    target, others = c[1], [c[2], c[3]]
    ids = {d.peer_id() for d in c.daemons}
    await in_thread(
        partial(wait_for, "3 names in the hosts file", lambda: all(i in hosts.read_text() for i in ids), 20)
    )
    args = {"endpoints": [{"ip": f"{c.block}.99", "port": API_PORT}], "known": poisoned_known(c.block)}
    frame = encode_request(Request(1, methods.PING, "test", ATTACKER, args))
    assert len(frame) <= MAX_FRAME, "one frame: the daemon reads all of it"
    marks = {d.n: len(d.log()) for d in c.daemons}

    async with open_peer_client(ATTACKER, "test", None, plaintext=Plaintext.LOOPBACK) as attacker:
        start = time.perf_counter()
        answer = await attacker.call(endpoint(target), methods.PING, args, expect_peer_id=None, timeout=20)
        round_trip = time.perf_counter() - start
    print(f"poisoned ping ({len(frame)} bytes) answered in {round_trip * 1000:.0f} ms")
    assert answer["peerId"] == target.peer_id(), "the handler ran"
    assert set(answer["known"]) <= ids, "the answer lists only peers the target verified"
    assert round_trip < PEER_TIMEOUT

    await trio.sleep(3 * PEER_TIMEOUT)  # time for its peers to miss it, were it frozen
    since = {d.n: d.log()[marks[d.n] :] for d in c.daemons}
    assert f"peer directory full ({MAX_RECORDS} records)" in since[target.n]
    for d in others:
        assert f"ping to peer {target.peer_id()} failed" not in since[d.n], f"daemon {d.n} lost the target"
    text = hosts.read_text()
    assert "api.github.com" not in text and "-0evil-leader" not in text
    block = text[text.index("# Begin") : text.index("# End")]
    assert len(block.splitlines()) == 1 + 3, "the three daemons, nothing else"
    for d in c.daemons:
        assert "-0evil-leader" not in d.log(), "the hint was never taken for a leader"
        assert "giving up leadership" not in since[d.n]


def nofile_command(soft: int, hard: int) -> list[str]:
    """Start the daemons as a host with a small open file limit would (1024 is common)."""
    return ["prlimit", f"--nofile={soft}:{hard}", "--", sys.executable, str(ROOT / "etcdmgr.py")]


def etcd_pid(d: Daemon) -> int:
    return int(json.loads((d.data_dir / "etcd.pid").read_text())["pid"])


def soft_nofile(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/limits").read_text().splitlines() if "open files" in x)
    return int(line.split()[3])


async def hold_idle_connections(d: Daemon, count: int, stats: dict[str, int]) -> None:
    """Keep `count` connections that never say anything open against d; reopen closed ones."""

    async def one() -> None:
        while True:
            try:
                stream = await trio.open_tcp_stream(d.ip, API_PORT)
            except OSError:
                stats["failed"] += 1
            else:
                stats["opened"] += 1
                try:
                    await stream.receive_some()  # b"" once the daemon hangs up
                except trio.BrokenResourceError:
                    pass
                finally:
                    await trio.aclose_forcefully(stream)
            await trio.sleep(2)

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)


async def test_1000_idle_connections_do_not_stop_a_daemon(
    make_cluster: Callable[..., Cluster],
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard or hard == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))  # the flood's own sockets
    c = make_cluster(3, tls=True, command=nofile_command(512, 1024))
    c.configure(3, VERSION)
    c.start()
    await in_thread(partial(c.wait_members, 3, timeout=90))
    await in_thread(partial(wait_all_healthy, c))
    # The highest id is never the leader, and a shrink to 2 removes its member.
    target = max(c.daemons, key=lambda d: d.peer_id())
    others = [d for d in c.daemons if d is not target]
    assert target.proc is not None
    assert "raised the open file limit from 512 to 1024" in target.log()
    assert soft_nofile(target.proc.pid) == 1024

    # A legitimate peer (a certificate from the cluster's CA) on an address of its own.
    ca = load_or_create_ca(c.pki_dir, MANAGER_CA, create=False)
    files = issue_peer_tls_files(ca, c.root / "tester", "zz-tester", timedelta(days=1))
    marks = {d.n: len(d.log()) for d in c.daemons}
    stats = {"opened": 0, "failed": 0}
    slowest = 0.0
    async with (
        open_peer_client(
            "zz-tester", "test", client_ssl_context(files), local_address=f"{c.block}.97"
        ) as probe,
        trio.open_nursery() as flood,
    ):
        flood.start_soon(hold_idle_connections, target, 1000, stats)
        await trio.sleep(3)

        async def probe_target() -> None:
            nonlocal slowest
            while True:
                start = time.perf_counter()
                info = await probe.call(
                    endpoint(target),
                    methods.GET_INFO,
                    {},
                    expect_peer_id=target.peer_id(),
                    timeout=PEER_TIMEOUT,
                )
                assert info["peerId"] == target.peer_id()
                slowest = max(slowest, time.perf_counter() - start)
                await trio.sleep(0.5)

        flood.start_soon(probe_target)

        # etcd killed under the flood: the daemon starts it again.
        old = etcd_pid(target)
        os.kill(old, signal.SIGKILL)
        await in_thread(
            partial(wait_for, "etcd restarted", lambda: etcd_pid(target) != old and c.healthy(target), 30)
        )
        # State written under the flood: its member removed (StopEtcd), then added back (JoinCluster).
        state_before = (target.data_dir / "state").read_bytes()
        c.configure(2, VERSION)
        await in_thread(
            partial(wait_for, "the target to leave", lambda: not (target.data_dir / "state").exists(), 90)
        )
        c.configure(3, VERSION)
        await in_thread(partial(c.wait_members, 3, timeout=120))
        assert (target.data_dir / "state").read_bytes() != state_before
        flood.cancel_scope.cancel()

    print(
        f"idle connections opened: {stats['opened']}, slowest GetInfo under the flood: {slowest * 1000:.0f} ms"
    )
    assert stats["opened"] >= 1000
    assert slowest < PEER_TIMEOUT
    since = {d.n: d.log()[marks[d.n] :] for d in c.daemons}
    for d in others:
        assert f"ping to peer {target.peer_id()} failed" not in since[d.n], f"daemon {d.n} lost the target"
    assert "Too many open files" not in target.log()
    refusals = since[target.n].count("refused a connection from")
    assert 1 <= refusals < 30, f"{refusals} refusal lines: one per 10 s at most"
