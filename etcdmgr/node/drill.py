"""Restore drills on this node, when a leader asks (DoDrill): answered at once, run in the
background, recorded beside the backup in the store (`etcdmgr-drill.json`).

Any authenticated peer may ask (a drill changes nothing but scratch files), so the node bounds
them itself: one at a time, and a new one no sooner than DRILL_SPACING after the last started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import trio

from etcdmgr.backup.drill import drill_backup
from etcdmgr.model import EtcdmgrError
from etcdmgr.model.checks import DrillRecord
from etcdmgr.model.ids import BackupName, PeerId
from etcdmgr.peer.calls import DoDrillAnswer, DoDrillArgs
from etcdmgr.store import BackupStore
from etcdmgr.store.layout import DRILL_FILE

log = logging.getLogger(__name__)

DRILL_SPACING = 60.0  # seconds between the starts of two drills on one node

DrillListener = Callable[[BackupName, DrillRecord], None]


class DrillRunner:
    """Runs the drills this node is asked for. ``on_result`` is called with each record (a hook,
    e.g. for metrics); it must not block."""

    def __init__(
        self,
        peer_id: PeerId,
        store: BackupStore,
        scratch: Path,
        bin_dirs: tuple[Path, ...],
        on_result: DrillListener | None = None,
    ) -> None:
        self.peer_id = peer_id
        self.store = store
        self.scratch = scratch
        self.bin_dirs = bin_dirs
        self.on_result = on_result
        self._nursery: trio.Nursery | None = None
        self._running: BackupName | None = None
        self._last_start: float | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the drills' nursery (a drill ends with the daemon)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def start(self, call: DoDrillArgs) -> DoDrillAnswer:
        if self._nursery is None:
            return DoDrillAnswer(started=False, reason="this node does not run drills yet")
        if self._running is not None:
            return DoDrillAnswer(started=False, reason=f"drilling backup {self._running}")
        now = trio.current_time()
        if self._last_start is not None and now - self._last_start < DRILL_SPACING:
            wait = DRILL_SPACING - (now - self._last_start)
            return DoDrillAnswer(
                started=False,
                reason=f"the last drill started less than {DRILL_SPACING:.0f}s ago; try in {wait:.0f}s",
            )
        self._running, self._last_start = call.backup, now
        self._nursery.start_soon(self._drill, call.backup)
        return DoDrillAnswer(started=True)

    async def _drill(self, name: BackupName) -> None:
        try:
            log.info("restore drill of backup %s started", name)
            workdir = self.scratch / f"drill-{name}"
            record = await drill_backup(self.store, name, self.bin_dirs, workdir, self.peer_id)
            if record.passed:
                log.info(
                    "restore drill of backup %s passed in %.1fs: %s", name, record.seconds, record.reason
                )
            else:
                log.error(
                    "restore drill of backup %s FAILED after %.1fs: %s", name, record.seconds, record.reason
                )
            try:
                await self.store.write_backup_extra(name, DRILL_FILE, record.to_bytes())
            except EtcdmgrError as e:
                log.warning("cannot record the drill of backup %s in the store: %s", name, e)
            if self.on_result is not None:
                self.on_result(name, record)
        except Exception:
            # A bug must not take the node (and its etcd) down: a drill is only a check.
            log.exception("restore drill of backup %s crashed", name)
        finally:
            self._running = None
