"""A throw-away etcd holding a backup's keyspace, for reading it without a cluster."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from etcdmgr.backup.restore import FetchedBackup, restore_data_dir
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdProcessExited
from etcdmgr.etcd.launch import EtcdLaunch
from etcdmgr.etcd.process import EtcdProcess
from etcdmgr.etcd.versions import EtcdBinaries

START_TIMEOUT = 60.0
_ATTEMPTS = 3


def _free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (etcd binds them a moment later; see the retry)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@asynccontextmanager
async def scratch_etcd(
    binaries: EtcdBinaries, fetched: FetchedBackup, workdir: Path
) -> AsyncIterator[EtcdClient]:
    """Restore ``fetched`` into a single member on free 127.0.0.1 ports under ``workdir`` and
    yield a client of it once healthy; the member is stopped on exit (the caller removes
    ``workdir``). Nothing else can join it: its cluster token is random."""
    for attempt in range(1, _ATTEMPTS + 1):
        peer_port, client_port = _free_ports(2)
        peer, client_url = f"http://127.0.0.1:{peer_port}", f"http://127.0.0.1:{client_port}"
        token = f"scratch-{secrets.token_hex(8)}"
        launch = EtcdLaunch(
            name="scratch",
            binaries=binaries,
            data_dir=workdir / f"attempt-{attempt}" / "data",
            listen_peer_urls=[peer],
            advertise_peer_urls=[peer],
            listen_client_urls=[client_url],
            advertise_client_urls=[client_url],
            initial_cluster={"scratch": [peer]},
            initial_cluster_token=token,
            enable_v2=False,
        )
        await restore_data_dir(
            binaries, fetched, launch.data_dir, "scratch", {"scratch": [peer]}, token, [peer]
        )
        client = EtcdClient([client_url], binaries)
        async with await EtcdProcess.start(launch, launch.data_dir.parent) as proc:
            try:
                with trio.fail_after(START_TIMEOUT):
                    await proc.wait_healthy(client)
            except EtcdProcessExited:
                # Most likely another process took one of the ports since we looked.
                if attempt == _ATTEMPTS:
                    raise
                continue
            yield client
            return
