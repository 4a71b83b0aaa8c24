"""This node's etcd child: kept running for a state, stopped on request.

The node service decides which state; this module keeps etcd running as it says. A start that
fails, or an etcd that exits on its own soon after, is retried with a growing pause
(node/restarts.py), and reported: in the daemon's log once per distinct failure with etcd's last
lines, and to the leader through `problem` (GetInfo's etcdProblem) until etcd runs again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import trio

from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.launch import EtcdLaunch
from etcdmgr.etcd.process import EtcdProcess
from etcdmgr.model import EtcdmgrError, EtcdState
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.restarts import STABLE_AFTER, Failures, error_line
from etcdmgr.ops import metrics

log = logging.getLogger(__name__)

TAIL_LINES = 15  # of etcd's output, in the report of a failure


class EtcdChild:
    def __init__(self, layout: DataLayout, launch_for: Callable[[EtcdState], Awaitable[EtcdLaunch]]) -> None:
        self.layout = layout
        self._launch_for = launch_for  # how etcd starts for a state (binaries, certificates)
        self.stable_after = STABLE_AFTER
        self._proc: EtcdProcess | None = None
        self._keeper: trio.CancelScope | None = None  # the task keeping etcd running
        self._failures = Failures()
        self._lock = trio.Lock()  # a start never overlaps a stop
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep etcd as asked until cancelled, then stop it."""
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

    @property
    def problem(self) -> str | None:
        """Why etcd is not running though it should, while its starts keep failing (and after
        it was stopped so, until the next start)."""
        return self._failures.problem()

    async def start(self, state: EtcdState) -> None:
        """Keep etcd running for `state` (none may run). The first start happens now and its
        error is raised (EtcdmgrError); it is retried anyway, as is every later exit."""
        assert self._nursery is not None
        self._keeper = trio.CancelScope()
        self._failures = Failures()
        error = await self._nursery.start(self._keep, state, self._keeper)
        if error is not None:
            raise error

    async def stop(self, grace: float | None = None) -> None:
        """Stop etcd and keep it stopped. A crash loop stays reported until the next start: the
        leader then prefers other peers for a new member."""
        if self._keeper is not None:
            self._keeper.cancel()
            self._keeper = None
        async with self._lock:  # waits for a start under way, whose etcd is then stopped here
            proc, self._proc = self._proc, None
        if proc is not None:
            rc = await proc.stop() if grace is None else await proc.stop(grace)
            log.info("stopped etcd pid %d (exit code %d)", proc.pid, rc)

    async def _keep(
        self,
        state: EtcdState,
        scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[EtcdmgrError | None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        first = True
        with scope:
            while True:
                proc: EtcdProcess | None = None
                error: EtcdmgrError | None = None
                try:
                    async with self._lock:
                        launch = await self._launch_for(state)
                        proc = self._proc = await EtcdProcess.start(
                            launch, self.layout.root, pid_file=self.layout.etcd_pid
                        )
                except EtcdmgrError as e:
                    error = e
                except OSError as e:  # e.g. no space for the certificates or the pid file
                    error = EtcdError(f"{e.strerror or e}: {e.filename}" if e.filename else str(e))
                if first:
                    task_status.started(error)
                    first = False
                if proc is not None:
                    await self._watch(proc)
                else:
                    await self._failed(f"cannot start etcd: {error}", str(error), "")

    async def _watch(self, proc: EtcdProcess) -> None:
        """Wait until etcd exits; a quick exit is a failed start and is waited out."""
        with trio.move_on_after(self.stable_after) as running_on:
            rc = await proc.wait_exited()
        if not running_on.cancelled_caught:
            metrics.etcd_restarted()
            ran = time.monotonic() - proc.started_at
            tail = proc.log_tail(TAIL_LINES)
            what = f"etcd exited with code {rc} {ran:.1f}s after it started: {error_line(tail)}"
            await self._failed(what, f"{rc}: {error_line(tail)}", tail)
            return
        if self._failures.count:
            log.info("etcd runs again after %d failed starts", self._failures.count)
        self._failures = Failures()
        rc = await proc.wait_exited()
        metrics.etcd_restarted()
        log.warning(
            "etcd exited on its own with code %s; starting it again. Last lines of etcd's log:\n%s",
            rc,
            proc.log_tail(TAIL_LINES),
        )

    async def _failed(self, what: str, signature: str, tail: str) -> None:
        """Count a failed start, report it, and wait out the pause before the next."""
        self._failures, new = self._failures.failed(what, signature, datetime.now(UTC))
        pause = self._failures.pause()
        if new:
            log.error(
                "%s; starting it again in %.0fs (failed start %d in a row)%s",
                what,
                pause,
                self._failures.count,
                f". Last lines of etcd's log:\n{tail}" if tail else "",
            )
        else:
            log.warning(
                "etcd failed to start again, the same way (%d in a row); next try in %.0fs",
                self._failures.count,
                pause,
            )
        await trio.sleep(pause)
