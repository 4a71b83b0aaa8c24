"""A short nemesis soak with a fixed seed: three daemons under acknowledged writes and checked
reads go through a few faults one at a time (kill -9 of an etcd, a partition, a paused daemon,
a wiped data dir, the store moved away, the leader's clock jumped), and then no acknowledged
write is lost, no read went back in time, one cluster served at a time under a claimed token,
no healthy member was removed, backups kept coming, writes were served and the cluster ends
whole. The long run is benchmarks/soak.py.

Availability: a fault that hits etcd's raft leader (a kill, a partition) costs an election,
about 2 s without writes whatever the manager does, and which member leads is not seeded. In a
two-minute run one such election is already 2% of the seconds, so here every stall longer than
1 s must be such an election, none may last 10 s, and writes are served in >= 95% of seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nemesis import Netfilter
from soak_run import START_VERSION, Soak, SoakConfig, targets_missed

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

SEED = 11
SCHEDULE = ("kill_etcd", "partition", "stop_daemon", "wipe", "store_away", "clock_jump")


def test_a_short_soak_meets_every_target(tmp_path: Path) -> None:
    if find_binaries(START_VERSION) is None:
        pytest.skip(f"etcd {START_VERSION} is not installed")
    if (why := Netfilter.available()) is not None:
        pytest.skip(f"the soak needs root and nft (tmpfs, cgroups, partitions): {why}")
    lines: list[str] = []
    soak = Soak(
        SoakConfig(tmp_path, minutes=4, seed=SEED, schedule=SCHEDULE, hold=(4, 8), long_hold=(10, 14)),
        out=lines.append,
    )
    result = soak.run()
    print("\n".join(lines))
    print(result)
    assert sorted(result["faults"]) == sorted(SCHEDULE), "every fault was carried out"
    assert targets_missed(result, min_availability=0.95) == []
    assert all(o["election"] for o in result["outages"]), "writes stalled without an etcd election"
    assert not soak.findings
