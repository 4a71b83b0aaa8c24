"""A member whose etcd cannot start (here: another listener holds its client port) is started
again with a growing pause; the daemon logs etcd's last lines once and reports the crash loop in
GetInfo. Freed, the port lets it recover by itself; left taken while a spare peer waits, the
leader replaces the member after --replace-after."""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
import trio
from harness import CLIENT_PORT, Cluster, Daemon, wait_for

from etcdmgr.etcd.versions import find_binaries
from etcdmgr.model import PeerEndpoint
from etcdmgr.peer import methods
from etcdmgr.peer.transport import Plaintext, open_peer_client

VERSION = "3.5.30"
PEER_PORT = 8000  # the daemon's default --peer-port; the harness keeps it
BIND_ERROR = "bind: address already in use"


@pytest.fixture(autouse=True)
def need_etcd() -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")


@contextmanager
def port_taken(d: Daemon) -> Iterator[None]:
    """Another program listening on the daemon's etcd client port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((d.ip, CLIENT_PORT))
        s.listen()
        yield


def get_info(c: Cluster, d: Daemon) -> dict[str, Any]:
    async def call() -> dict[str, Any]:
        async with open_peer_client(
            "zz-tester", "test", None, plaintext=Plaintext.LOOPBACK, local_address=f"{c.block}.97"
        ) as client:
            info: dict[str, Any] = await client.call(
                PeerEndpoint(d.ip, PEER_PORT), methods.GET_INFO, {}, expect_peer_id=d.peer_id()
            )
            return info

    return trio.run(call)


def etcd_starts(d: Daemon) -> list[datetime]:
    """When the daemon started etcd (each start heads its output in etcd.log; to the second)."""
    text = (d.data_dir / "etcd.log").read_text(errors="replace")
    return [
        datetime.strptime(s, "%Y-%m-%dT%H:%M:%S%z")
        for s in re.findall(r"--- (\S+) etcdmgr starts etcd", text)
    ]


def highest(c: Cluster) -> Daemon:
    """The daemon with the highest id: never the leader while the others are up."""
    return max(c.daemons, key=lambda d: d.peer_id())


def test_a_crash_loop_backs_off_is_reported_and_recovers_when_the_port_is_free(
    make_cluster: Callable[..., Cluster],
) -> None:
    c = make_cluster(3)
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    d = highest(c)
    d.stop()
    c.put("before", "1")
    before = len(etcd_starts(d))

    with port_taken(d):
        d.start()
        info = wait_for(
            "the crash loop in GetInfo",
            lambda: i if "failed start 3 in a row" in (i := get_info(c, d)).get("etcdProblem", "") else None,
            timeout=30,
        )
        assert BIND_ERROR in info["etcdProblem"] and info["etcdRunning"] is False
        starts = wait_for("a fourth start", lambda: s if len(s := etcd_starts(d)[before:]) >= 4 else None, 30)
        # etcd's own lines are in the daemon's log once, however often it failed the same way.
        log = d.log()
        assert log.count("Last lines of etcd's log") == 1, log
        assert '"level":"fatal"' in log and BIND_ERROR in log
        assert "etcd failed to start again, the same way" in log

    # The pauses grew: 1, 2, 4 s between starts (time stamps to the second).
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)][:3]
    assert [round(g) in (n - 1, n, n + 1) for g, n in zip(gaps, (1, 2, 4), strict=False)] == [True] * 3, gaps
    # Freed: the next try (8 s after the fourth) starts etcd, and the member serves again. (The
    # report goes once etcd has run for 30 s: the node's unit tests show that.)
    c.wait_members(3, timeout=60)
    assert get_info(c, d)["etcdRunning"] is True
    assert c.get("before", d.n) == "1"


def test_a_member_whose_etcd_keeps_failing_is_replaced_by_a_spare_after_replace_after(
    make_cluster: Callable[..., Cluster],
) -> None:
    c = make_cluster(4, extra_args=["--replace-after=10s"])
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    by_id = sorted(c.daemons, key=lambda d: d.peer_id())
    members, spare = by_id[:3], by_id[3]  # a new cluster starts on the lowest ids
    victim = members[2]  # not the leader (the lowest)
    victim.stop()
    c.put("before", "1")

    with port_taken(victim):
        victim.start()
        wait_for("the crash loop in GetInfo", lambda: "etcdProblem" in get_info(c, victim), timeout=30)
        c.wait_members(3, on=[members[0].n, members[1].n, spare.n], timeout=120)
        # Told to stop etcd, the node moved its data aside and waits, idle: a spare of last resort
        # while it still reports how its etcd failed.
        wait_for("the victim idle", lambda: get_info(c, victim)["etcdState"] is None, timeout=30)
        assert BIND_ERROR in get_info(c, victim)["etcdProblem"]
        assert list((victim.data_dir / "data-trashcan").iterdir())
    leader = members[0].log()
    assert (
        f"member {victim.peer_id()} unhealthy for" in leader
        and "its etcd failing (etcd exited with code 1" in leader
    )
    assert c.get("before", spare.n) == "1"
