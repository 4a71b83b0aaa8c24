"""Leader failover: a leader daemon killed on a host that stays up closes its connections, and
the next peer leads at once; a leader that goes silent (stopped, connections open) is passed
over only after --peer-timeout."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest
from harness import Cluster, wait_for

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"
PEER_TIMEOUT = 8.0


@pytest.fixture(autouse=True)
def _need_etcd() -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")



def test_a_killed_leader_is_replaced_at_once_and_a_silent_one_after_the_peer_timeout(
    make_cluster: Callable[..., Cluster],
) -> None:
    c = make_cluster(3, extra_args=[f"--peer-timeout={PEER_TIMEOUT:g}s"])
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    first, second, third = sorted(c.daemons, key=lambda d: d.peer_id())  # the lowest id leads

    killed_at = time.time()
    first.kill9()
    led = wait_for("the next peer to lead", lambda: second.logged_at("taking leadership", killed_at), 20)
    acted = wait_for("its first decision", lambda: second.logged_at("decision:", led), 20)
    print(
        f"kill -9 of the leader: next leads after {led - killed_at:.2f}s, decides after {acted - killed_at:.2f}s"
    )
    assert led - killed_at < PEER_TIMEOUT / 2, "it waited for the ping timeout"
    assert f"connection to peer {first.peer_id()}" in second.log()

    # Stopped, not dead: its connections stay open, so only the peer timeout tells.
    assert second.proc is not None
    second.proc.send_signal(signal.SIGSTOP)
    try:
        stopped_at = time.time()
        took = wait_for(
            "the third peer to lead", lambda: third.logged_at("taking leadership", stopped_at), 40
        )
        print(f"SIGSTOP of the leader: next leads after {took - stopped_at:.2f}s")
        assert took - stopped_at >= PEER_TIMEOUT - 1
    finally:
        second.proc.send_signal(signal.SIGCONT)
