"""Fixtures shared by the whole test session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Cluster
from hypothesis import strategies as st
from object_servers import Server, start_azurite, start_moto
from pyz import SHIV_ROOT, ensure_pyz

TESTS = Path(__file__).resolve().parent
# Fastest answers first: a broken unit shows in seconds, not after the multi-process scenarios.
SUITE_ORDER = ("unit", "integration", "e2e")


def suite_rank(item: pytest.Item) -> tuple[int, bool]:
    ranks = (rank for rank, folder in enumerate(SUITE_ORDER) if item.path.is_relative_to(TESTS / folder))
    # Within a folder the longest files start first, so parallel workers finish together.
    return next(ranks, len(SUITE_ORDER)), item.get_closest_marker("long") is None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=suite_rank)  # stable: each folder keeps pytest's own order


def pytest_collection_finish(session: pytest.Session) -> None:
    # Hypothesis builds its Unicode tables the first time a text strategy is used (1-2 s, then
    # cached in .hypothesis/). Inside a test that time counts as input generation, and on a fresh
    # checkout it failed the too_slow health check of whichever fuzz test came first.
    st.text().validate()


@pytest.fixture(scope="session")
def pyz() -> Path:
    """dist/etcdmgr.pyz, built once per session when missing or older than its sources.

    Every process the session starts unpacks it into the tests' own SHIV_ROOT, unless one is set.
    """
    os.environ.setdefault("SHIV_ROOT", str(SHIV_ROOT))
    return ensure_pyz()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """moto's S3 server on 127.0.0.1, shared by the session (each test its own prefix)."""
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Azurite's Blob service on 127.0.0.1, shared by the session (each test its own prefix)."""
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


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
