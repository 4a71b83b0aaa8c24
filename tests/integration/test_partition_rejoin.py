"""A member cut off from its peers for a while rejoins without deposing the working leader:
the daemon turns on etcd's pre-vote from 3.4 (off by default there), so the cut-off member does
not campaign at ever higher terms and the leader keeps its term when the member is back.

Found by the nemesis soak (seed 7, a partition of one node): without pre-vote the leader saw
`received a MsgAppResp message with higher term` at the heal, and writes stalled for an election.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest
from harness import CLIENT_PORT, Cluster, wait_for
from nemesis import Cgroups, Netfilter, confine
from writer import Gateway

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"  # the version whose default is no pre-vote


@pytest.fixture
def cut_off() -> Iterator[tuple[Cgroups, Netfilter]]:
    if (why := Netfilter.available()) is not None:
        pytest.skip(why)
    tag = f"{os.getpid()}_{time.monotonic_ns()}"
    cgroups = Cgroups(f"etcdmgr-test-{tag}")
    netfilter = Netfilter(f"etcdmgr_test_{tag}")
    try:
        yield cgroups, netfilter
    finally:
        netfilter.remove()
        cgroups.remove()


def status(c: Cluster, n: int) -> dict[str, int]:
    """Raft term and leader as member n's etcd reports them."""
    answer = Gateway().post(f"http://{c[n].ip}:{CLIENT_PORT}", "maintenance/status", {}, 2.0)
    return {
        "term": int(answer["raftTerm"]),
        "leader": int(answer["leader"]),
        "me": int(answer["header"]["member_id"]),
    }


def test_a_partitioned_member_rejoins_without_an_election(
    make_cluster: Callable[..., Cluster], cut_off: tuple[Cgroups, Netfilter]
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    cgroups, netfilter = cut_off
    c = make_cluster(3)
    for d in c.daemons:
        confine(d, cgroups)
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    before = {n: status(c, n) for n in (1, 2, 3)}
    follower = next(n for n, s in before.items() if s["me"] != s["leader"])
    leader = next(n for n, s in before.items() if s["me"] == s["leader"])

    netfilter.isolate(c[follower].ip, cgroups.nft_match(follower))
    time.sleep(6)  # six election timeouts: without pre-vote the member campaigns each time
    netfilter.heal()
    wait_for("the member back in the cluster", lambda: c.healthy(c[follower]), timeout=30)
    time.sleep(2)

    after = status(c, leader)
    assert after["leader"] == before[leader]["leader"], "the leader was deposed"
    assert after["term"] == before[leader]["term"], "an election was held when the member came back"
    assert status(c, follower)["term"] == after["term"]
