"""The leader's side of restore drills: after a backup, at most once per drill interval, ask a
node to restore it into a throw-away etcd (DoDrill; node/drill.py runs it and records how it
went beside the backup), and follow that record in the store.

The drill runs on an idle node or a follower, never on the leader's disk while another node can
take it: the leader's etcd is the one every client reaches first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import trio

from etcdmgr.model import EtcdmgrError, PeerInfo
from etcdmgr.model.checks import DrillRecord
from etcdmgr.model.ids import BackupName
from etcdmgr.model.status import DrillStatus
from etcdmgr.peer.calls import DoDrillArgs
from etcdmgr.peer.node_api import NodeApi
from etcdmgr.store import BackupStore
from etcdmgr.store.layout import DRILL_FILE

log = logging.getLogger(__name__)

SEED_LOOKBACK = 10  # newest backups a new leader looks at for the last drill record


def drill_candidates(peers: Mapping[str, PeerInfo], me: str) -> list[str]:
    """Who may drill, in order: idle nodes (their disk holds no member), then followers, lowest
    id first; the leader only when no other node answers it."""
    others = [pid for pid in peers if pid != me]
    idle = sorted(pid for pid in others if peers[pid].etcd_state is None)
    followers = sorted(pid for pid in others if peers[pid].etcd_state is not None)
    return idle + followers if others else [me]


class Drills:
    """Which backups this leader had drilled, and how the last drill went."""

    def __init__(self, api: NodeApi, store: BackupStore, me: str, interval: float | None) -> None:
        self.api = api
        self.store = store
        self.me = me
        self.interval = interval  # None: never drill
        self.last: DrillStatus | None = None
        self._asked_at: float | None = None  # trio clock
        self._seeded = False

    async def after_backup(self, peers: Mapping[str, PeerInfo], name: BackupName) -> None:
        """Ask a node to drill backup ``name`` when the last drill is older than the interval.
        Never raises: a drill not taken waits for the next backup."""
        now = trio.current_time()
        if self.interval is None or (self._asked_at is not None and now - self._asked_at < self.interval):
            return
        for pid in drill_candidates(peers, self.me):
            try:
                answer = await self.api.do_drill(pid, DoDrillArgs(backup=name))
            except EtcdmgrError as e:
                log.info("peer %s cannot drill backup %s: %s", pid, name, e)
                continue
            if answer.started:
                log.info("asked %s to drill backup %s (restore it into a throw-away etcd)", pid, name)
                self._asked_at, self.last = now, DrillStatus(name)
                return
            log.info("peer %s cannot drill backup %s now: %s", pid, name, answer.reason)

    async def status(self) -> DrillStatus | None:
        """The last drill: its backup, and its record once the node wrote it (a failed one is
        logged here once, with the backup's name)."""
        if not self._seeded:
            self._seeded = True
            await self._seed()
        last = self.last
        if last is None or last.record is not None:
            return last
        record = await self._record(last.backup)
        if record is not None:
            if not record.passed:
                log.warning("restore drill of backup %s failed on %s: %s", last.backup, record.node, record.reason)
            self.last = DrillStatus(last.backup, record)
        return self.last

    async def _record(self, name: BackupName) -> DrillRecord | None:
        try:
            raw = await self.store.read_backup_extra(name, DRILL_FILE)
            return None if raw is None else DrillRecord.from_bytes(raw)
        except EtcdmgrError as e:
            log.info("cannot read the drill record of backup %s: %s", name, e)
            return None

    async def _seed(self) -> None:
        """A new leader takes the last drill from the store, and waits out its interval."""
        if self.last is not None:
            return
        try:
            names = await self.store.list_backups()
        except EtcdmgrError:
            return
        for name in reversed(names[-SEED_LOOKBACK:]):
            record = await self._record(name)
            if record is not None:
                self.last = DrillStatus(name, record)
                ago = max(0.0, time.time() - record.time)  # another host's clock: a pacing hint only
                self._asked_at = trio.current_time() - ago
                return
