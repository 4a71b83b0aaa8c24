"""A learner that cannot catch up (its etcd hangs as it joins) is not promoted over and over at
full speed: each refusal waits longer, and after --replace-after the learner is removed and its
node joins again afresh (found by the soak: the leader retried every 0.2 s, for good)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from harness import Cluster, wait_for
from nemesis import etcd_pid

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.4.23"
REPLACE_AFTER = 8


@pytest.fixture(autouse=True)
def _need_etcd() -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")


def test_a_learner_that_never_catches_up_is_retried_with_backoff_then_replaced(
    make_cluster: Callable[..., Cluster],
) -> None:
    c = make_cluster(3, extra_args=[f"--replace-after={REPLACE_AFTER}s"])
    c.configure(3, VERSION)
    c.start(1, 2)
    c.wait_members(2, on=[1, 2])
    for i in range(200):  # something to catch up on
        c.put(f"k{i}", "x" * 200)

    c.start(3)
    # Freeze the learner's etcd as soon as it starts: it can never get in sync with the leader.
    frozen = wait_for("node 3's etcd to start", lambda: etcd_pid(c[3]), timeout=60, interval=0.005)
    os.kill(frozen, signal.SIGSTOP)
    try:
        wait_for(
            "the stuck learner to be removed",
            lambda: "could not be promoted for" in c.logs(),
            timeout=REPLACE_AFTER + 40,
        )
    finally:
        os.kill(frozen, signal.SIGCONT)  # a no-op once its node has stopped it
    logs = c.logs()
    assert "its node joins again afresh: removing member" in logs
    # Refusals back off (1, 2, 4 ... s): a handful within replace-after, not one per 0.2 s cycle.
    refused = logs.count("not promoted: ")
    print(f"{refused} refused promotions before the removal")
    assert 2 <= refused <= 6, f"{refused} promotion attempts"

    # Node 3 is idle again, and is added once more; this time its etcd runs and is promoted.
    started = time.monotonic()
    members = c.wait_members(3, timeout=90)
    assert {c._n_of(m) for m in members} == {1, 2, 3}
    assert c.get("k199", 3) == "x" * 200
    print(f"rejoined and promoted {time.monotonic() - started:.1f}s after the removal")
