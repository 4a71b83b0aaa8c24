"""Certificates follow their files while the daemon runs.

Every WATCH_INTERVAL the daemon stats the CA files of `--pki-dir` and its peer API certificates;
when one changed (a CA rotation step, or anything written there), on SIGHUP, and at least every
`renew_every`, it reissues what is due (its own certificates and etcd's) and reloads the peer
API's contexts. etcd reads new leaf certificates for each connection by itself; the CA bundles
it trusts only at start, so a node whose bundles changed says so to the leader (GetInfo's
etcdTrustOutdated), which restarts the members one at a time (rule `restart_for_trust`).
"""

from __future__ import annotations

import logging
import signal

import trio

from etcdmgr.daemon.manager_certs import ManagerCerts
from etcdmgr.model import EtcdmgrError
from etcdmgr.node.service import NodeService
from etcdmgr.pki.reload import Stamp, stamps

log = logging.getLogger(__name__)

WATCH_INTERVAL = 2.0  # seconds between looks at the files' stat (a few stat calls)


async def watch_certificates(
    certs: ManagerCerts,
    node: NodeService,
    renew_every: float,
    *,
    interval: float = WATCH_INTERVAL,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Follow the certificate files until cancelled: every `interval` a stat of each, at once on
    SIGHUP, and a full check at least every `renew_every` seconds."""
    with trio.open_signal_receiver(signal.SIGHUP) as hups:
        wake_send, wake = trio.open_memory_channel[None](1)

        async def on_hup() -> None:
            async for _ in hups:
                log.info("got SIGHUP: checking the certificate files now")
                try:
                    wake_send.send_nowait(None)
                except trio.WouldBlock:  # a look is already due
                    pass

        # What the files are now, before the caller goes on: a change made after start is seen.
        seen = await trio.to_thread.run_sync(stamps, certs.watched_files())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(on_hup)
            task_status.started()
            await _watch(certs, node, renew_every, interval, wake, seen)


async def _watch(
    certs: ManagerCerts,
    node: NodeService,
    renew_every: float,
    interval: float,
    wake: trio.MemoryReceiveChannel[None],
    seen: tuple[Stamp, ...],
) -> None:
    last_check = trio.current_time()
    failing: str | None = None  # the last failure, logged once until it changes or clears
    while True:
        woken = False
        with trio.move_on_after(interval):
            await wake.receive()
            woken = True
        now = await trio.to_thread.run_sync(stamps, certs.watched_files())
        if not woken and now == seen and trio.current_time() - last_check < renew_every:
            continue
        last_check = trio.current_time()
        problem = await _check(certs, node)
        if problem is None:
            seen = now
            if failing is not None:
                log.info("certificate files usable again")
        elif problem != failing:
            log.warning("%s; the files in use still serve, trying again", problem)
        # A failed look is tried again next round (e.g. a CA file caught emptied by an editor).
        failing = problem


async def _check(certs: ManagerCerts, node: NodeService) -> str | None:
    """One look at every certificate; what failed, or None."""
    try:
        contexts, changes = await trio.to_thread.run_sync(certs.check)
    except (EtcdmgrError, OSError) as e:
        return f"peer API certificates not reloaded: {e}"
    if changes is not None:
        certs.contexts = contexts
        log.info("peer API TLS reloaded for new connections: %s", changes)
    try:
        await node.check_certs()
    except (EtcdmgrError, OSError) as e:
        return f"etcd certificates not reissued: {e}"
    return None
