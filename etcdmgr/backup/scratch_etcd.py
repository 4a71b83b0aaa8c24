"""A throw-away etcd holding a backup's keyspace, for reading it (`dump`) or proving that it
restores (drills), without a cluster."""

from __future__ import annotations

import contextlib
import os
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


def clean_env() -> dict[str, str]:
    """The environment without ETCD_* and ETCDCTL_*: variables meant for the managed member
    (a metrics URL, a port, a quota) must not reach a throw-away one, whose ports they would
    clash with (the original's restore loop on an inherited ETCD_LISTEN_METRICS_URLS)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}


@asynccontextmanager
async def scratch_etcd(
    binaries: EtcdBinaries, fetched: FetchedBackup, workdir: Path, *, niceness: int = 0
) -> AsyncIterator[EtcdClient]:
    """Restore ``fetched`` into a single member on free 127.0.0.1 ports under ``workdir`` and
    yield a client of it once healthy; the member is stopped on exit (the caller removes
    ``workdir``). Nothing else can join it: its cluster token is random. A positive
    ``niceness`` lowers the CPU priority of the restore and of the member."""
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
            binaries, fetched, launch.data_dir, "scratch", {"scratch": [peer]}, token, [peer], niceness=niceness
        )
        client = EtcdClient([client_url], binaries)
        async with await EtcdProcess.start(launch, launch.data_dir.parent, parent_env=clean_env()) as proc:
            if niceness > 0:
                # The pid is etcd's (its launcher execs it in place); the priority survives the
                # exec. One that exited already is reported by wait_healthy.
                with contextlib.suppress(ProcessLookupError):
                    os.setpriority(os.PRIO_PROCESS, proc.pid, niceness)
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
