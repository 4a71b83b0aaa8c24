"""The daemon's look at its certificate files: a change is picked up by its stat, SIGHUP looks at
once, and a file that cannot be used is reported once while the old contexts keep serving."""

from __future__ import annotations

import logging
import os
import signal
from functools import partial
from pathlib import Path

import pytest
import trio

from etcdmgr.daemon.cert_watch import watch_certificates
from etcdmgr.node.service import NodeService
from etcdmgr.pki import MANAGER_CA
from tests.unit.test_peer_tls_reload import init_pki, manager

RELOADED = "peer API TLS reloaded for new connections"


def lines(caplog: pytest.LogCaptureFixture, what: str) -> int:
    return sum(1 for r in caplog.records if what in r.getMessage())


async def until(what: str, caplog: pytest.LogCaptureFixture, count: int = 1, timeout: float = 5) -> float:
    """Seconds until `count` log lines hold `what`."""
    start = trio.current_time()
    with trio.fail_after(timeout):
        while lines(caplog, what) < count:  # noqa: ASYNC110  # records come from threads too
            await trio.sleep(0.01)
    return trio.current_time() - start


async def test_changes_are_seen_by_stat_or_at_once_on_sighup(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    pki, other = init_pki(tmp_path / "pki"), init_pki(tmp_path / "other")
    certs = manager(tmp_path, pki, "peer-a")
    node = NodeService(certs.config.node_config(), certs.layout, certs.peer_id)  # no etcd state
    ca, added = pki / f"{MANAGER_CA}.crt", (other / f"{MANAGER_CA}.crt").read_bytes()
    async with trio.open_nursery() as nursery:
        # A long interval: only SIGHUP can make the first change seen quickly.
        await nursery.start(partial(watch_certificates, certs, node, 3600.0, interval=30.0))
        before = certs.contexts
        ca.write_bytes(ca.read_bytes() + added)
        os.kill(os.getpid(), signal.SIGHUP)
        await until(RELOADED, caplog)
        assert certs.contexts is not before and lines(caplog, "got SIGHUP") == 1
        nursery.cancel_scope.cancel()

    good = ca.read_bytes()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(watch_certificates, certs, node, 3600.0, interval=0.05))
        ca.write_bytes(b"")  # emptied, as an editor may leave it for a while
        await until("peer API certificates not reloaded", caplog)
        await trio.sleep(0.3)
        assert lines(caplog, "peer API certificates not reloaded") == 1, "reported once, not every look"
        ca.write_bytes(good)
        await until("certificate files usable again", caplog)
        assert lines(caplog, RELOADED) == 1, "the same certificates as before: nothing to reload"
        nursery.cancel_scope.cancel()
