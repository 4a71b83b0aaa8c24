"""Real etcd members on loopback addresses for tests: binaries (or a clean skip), launches, starts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
import trio

from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdTransient
from etcdmgr.etcd.launch import EtcdLaunch
from etcdmgr.etcd.process import EtcdProcess
from etcdmgr.etcd.versions import EtcdBinaries, find_binaries

PEER_PORT = 2380
CLIENT_PORT = 4001
START_TIMEOUT = 30.0
T = TypeVar("T")


def binaries_or_skip(version: str) -> EtcdBinaries:
    b = find_binaries(version)
    if b is None:
        pytest.skip(f"etcd {version} is not installed (scripts/install-etcd {version})")
    return b


def peer_url(ip: str) -> str:
    return f"http://{ip}:{PEER_PORT}"


def client_url(ip: str) -> str:
    return f"http://{ip}:{CLIENT_PORT}"


def launch(
    binaries: EtcdBinaries,
    root: Path,
    name: str,
    ip: str,
    *,
    cluster: Mapping[str, str] | None = None,
    state: str = "new",
    token: str = "test-token",
) -> EtcdLaunch:
    """A member `name` on `ip`; `cluster` maps every initial member's name to its ip."""
    members = cluster or {name: ip}
    return EtcdLaunch(
        name=name,
        binaries=binaries,
        data_dir=root / name / "data",
        listen_peer_urls=[peer_url(ip)],
        advertise_peer_urls=[peer_url(ip)],
        listen_client_urls=[client_url(ip)],
        advertise_client_urls=[client_url(ip)],
        initial_cluster={n: [peer_url(a)] for n, a in members.items()},
        initial_cluster_token=token,
        initial_cluster_state="existing" if state == "existing" else "new",
    )


@asynccontextmanager
async def running(member: EtcdLaunch, *, healthy: bool = True) -> AsyncIterator[EtcdProcess]:
    """Start the member (and wait until it serves); always stop it on exit."""
    proc = await EtcdProcess.start(member, member.data_dir.parent / "log")
    async with proc:
        if healthy:
            with trio.fail_after(START_TIMEOUT):
                await proc.wait_healthy(EtcdClient(member.advertise_client_urls, member.binaries))
        yield proc


async def retry_transient(fn: Callable[[], Awaitable[T]], within: float = 30.0) -> T:
    """Call `fn` until etcd stops saying "not now" (EtcdTransient), for at most `within` seconds."""
    with trio.fail_after(within):
        while True:
            try:
                return await fn()
            except EtcdTransient:
                await trio.sleep(0.3)


async def wait_serving(client: EtcdClient, endpoint: str) -> None:
    """Poll until `endpoint` is healthy (for an etcd we did not start here)."""
    while True:
        if await client.endpoint_health(endpoint):
            return
        await trio.sleep(0.1)
