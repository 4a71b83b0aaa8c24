"""This node's etcd child: started for a state, restarted when it exits on its own, stopped on
request. The node service decides which state; this module keeps etcd running as it says."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.launch import EtcdLaunch
from etcdmgr.etcd.process import EtcdProcess
from etcdmgr.model import EtcdState
from etcdmgr.node.layout import DataLayout

log = logging.getLogger(__name__)

RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


class EtcdChild:
    def __init__(self, layout: DataLayout, launch_for: Callable[[EtcdState], Awaitable[EtcdLaunch]]) -> None:
        self.layout = layout
        self._launch_for = launch_for  # how etcd starts for a state (binaries, certificates)
        self._proc: EtcdProcess | None = None
        self._lock = trio.Lock()  # a restart never runs into a start or stop
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Watch the child until cancelled, then stop it."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await self.stop()

    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self, state: EtcdState) -> None:
        """Start etcd for `state` (none may run); EtcdError when it cannot start."""
        assert self._nursery is not None
        proc = await EtcdProcess.start(
            await self._launch_for(state), self.layout.root, pid_file=self.layout.etcd_pid
        )
        self._proc = proc
        self._nursery.start_soon(self._watch, proc, state)

    async def stop(self, grace: float | None = None) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            rc = await proc.stop() if grace is None else await proc.stop(grace)
            log.info("stopped etcd pid %d (exit code %d)", proc.pid, rc)

    async def _watch(self, proc: EtcdProcess, state: EtcdState) -> None:
        """Restart etcd if it exits without being asked to, with a growing pause."""
        attempt = 0
        while True:
            rc = await proc.wait_exited()
            if self._proc is not proc:
                return
            pause = RESTART_BACKOFF[min(attempt, len(RESTART_BACKOFF) - 1)]
            log.warning(
                "etcd exited unexpectedly with code %s; restarting in %.0fs. Last output:\n%s",
                rc,
                pause,
                proc.log_tail(8),
            )
            await trio.sleep(pause)
            async with self._lock:
                if self._proc is not proc:
                    return
                try:
                    await self.start(state)
                except EtcdError as e:
                    log.error("cannot restart etcd: %s", e)
                    attempt += 1
                    continue
                return
