"""Fixtures shared by the whole test session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Cluster
from pyz import ensure_pyz


@pytest.fixture(scope="session")
def pyz() -> Path:
    """dist/etcdmgr.pyz, built once per session when missing or older than its sources."""
    return ensure_pyz()


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Factory for daemon clusters on a fresh loopback block; every daemon is stopped after the test.

    The daemons' logs are printed at teardown, so a failing test shows them."""
    clusters: list[Cluster] = []

    def make(size: int, **kwargs: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(clusters)}", size, **kwargs)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop_all()
        print(cluster.logs())
