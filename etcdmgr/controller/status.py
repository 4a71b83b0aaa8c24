"""The cluster status the leader keeps in the store for `ctl status` (etcdmgr.model.status).

`build_status` is pure: what one cycle saw (the view), what it decided, and what the leader
remembers (the last outcome, the newest backup, the last drill, certificate expiries). The
writer sends it to the store around each action, and otherwise only when it changed or its
refresh time is up: each cycle on file://, once a minute on object stores (each request costs).
A failed write is logged, never a failed cycle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

import trio

from etcdmgr.controller.actions import Decision, TakeBackup
from etcdmgr.controller.drills import Drills
from etcdmgr.controller.observe import managed_token
from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.model import EtcdmgrError, InvalidData, PeerEndpoint, PeerInfo
from etcdmgr.model.ids import ClusterToken, PeerId, name_time, parse_peer_id
from etcdmgr.model.status import BackupStatus, ClusterStatus, DrillStatus, Outcome, PeerStatus
from etcdmgr.store import BackupStore

log = logging.getLogger(__name__)

STALE_CYCLES = 3  # a status older than this many refreshes has no leader writing it
MIN_STALE = 60.0  # a cycle waiting on peers that time out can take half a minute
OBJECT_STORE_REFRESH = 60.0
CERT_REFRESH = 600.0  # certificate files are read again after this many seconds
TRUST_RESTART_PENDING = "etcd restart pending: its CA files changed"

Addresses = Mapping[PeerId, Sequence[PeerEndpoint]]


def _member_of(pid: str, info: PeerInfo | None, members: Sequence[MemberView]) -> MemberView | None:
    """The member a peer runs: by name, or (not started yet, so unnamed) by its peer URLs."""
    for m in members:
        if m.name == pid or (not m.name and info is not None and set(m.peer_urls) & set(info.node.peer_urls)):
            return m
    return None


def _kind(m: MemberView | None) -> str:
    return "" if m is None else "learner" if m.is_learner else "voting"


def _member_row_id(m: MemberView) -> PeerId:
    try:
        return parse_peer_id(m.name, "member name")
    except InvalidData:
        return PeerId(f"{m.member_id:x}")


def peer_rows(view: ClusterView, addresses: Addresses) -> tuple[PeerStatus, ...]:
    """One row per peer the leader knows or heard from, then one per member no peer runs."""
    members = view.members or ()
    rows: list[PeerStatus] = []
    matched: set[int] = set()
    for pid in sorted(set(addresses) | set(view.peers)):
        info = view.peers.get(pid)
        m = _member_of(pid, info, members)
        if m is not None:
            matched.add(m.member_id)
        state = info.etcd_state if info else None
        endpoints = addresses.get(PeerId(pid)) or ()
        rows.append(
            PeerStatus(
                peer_id=PeerId(pid),
                address=str(endpoints[0]) if endpoints else "",
                daemon=info is not None,
                member=_kind(m),
                member_healthy=None if m is None else m.healthy,
                version=state.etcd_version if state else None,
                quarantined=bool(state and state.quarantined),
                cluster_token=state.cluster.cluster_token if state else None,
                problem=_peer_problem(info),
            )
        )
    for m in members:
        if m.member_id not in matched:
            rows.append(
                PeerStatus(
                    peer_id=_member_row_id(m),
                    member=_kind(m),
                    member_healthy=m.healthy,
                    problem="no daemon answers for this member",
                )
            )
    return tuple(rows)


def _peer_problem(info: PeerInfo | None) -> str:
    if info is None:
        return ""
    if info.state_problem:
        return info.state_problem
    return TRUST_RESTART_PENDING if info.etcd_trust_outdated else ""


def build_status(
    *,
    now: int,
    me: PeerId,
    view: ClusterView,
    decision: Decision,
    acting: bool,
    addresses: Addresses,
    stale_after: float,
    last_action: Outcome | None = None,
    backup: BackupStatus | None = None,
    backup_failure: Outcome | None = None,
    drill: DrillStatus | None = None,
    certificates: Mapping[str, int] | None = None,
) -> ClusterStatus:
    token = managed_token(view.peers)
    return ClusterStatus(
        time=now,
        leader=me,
        stale_after=stale_after,
        spec=view.spec,
        action=type(decision.action).__name__,
        reason=decision.reason,
        acting=acting,
        cluster_token=ClusterToken(token) if token else None,
        peers=peer_rows(view, addresses),
        problems=tuple(p for p in (view.spec_problem, view.members_problem) if p),
        last_action=last_action,
        backup=backup,
        backup_failure=backup_failure,
        drill=drill,
        certificates=dict(certificates or {}),
    )


class StatusWriter:
    """Keeps control/etcdmgr-status.json current while this node leads."""

    def __init__(
        self,
        store: BackupStore,
        me: PeerId,
        addresses: Callable[[], Addresses],
        drills: Drills,
        cycle_interval: float,
        certificates: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.store = store
        self.me = me
        self.addresses = addresses
        self.drills = drills
        self.certificates = certificates
        self.refresh = cycle_interval if store.cheap_writes else max(OBJECT_STORE_REFRESH, cycle_interval)
        self.stale_after = max(STALE_CYCLES * self.refresh, MIN_STALE)
        self._last_action: Outcome | None = None
        self._backup: BackupStatus | None = None
        self._backup_failure: Outcome | None = None
        self._backup_known = False  # _backup is up to date (no action ran since it was read)
        self._certs: dict[str, int] = {}
        self._certs_read_at: float | None = None
        self._content: bytes | None = None
        self._written_at: float | None = None
        self._problem = ""

    @asynccontextmanager
    async def around(self, view: ClusterView, decision: Decision) -> AsyncIterator[None]:
        """Publish the decision (for an action: as started, then as ended, with its outcome)."""
        await self._publish(view, decision, acting=decision.mutates)
        if not decision.mutates:
            yield
            return
        try:
            yield
        except Exception as e:
            self._ended(decision, str(e) or type(e).__name__)
            await self._publish(view, decision, acting=False)
            raise
        self._ended(decision, "")
        await self._publish(view, decision, acting=False)

    def _ended(self, decision: Decision, error: str) -> None:
        outcome = Outcome(type(decision.action).__name__, int(time.time()), error[:1000])
        self._last_action = outcome
        self._backup_known = False  # most actions back up first
        if isinstance(decision.action, TakeBackup):
            self._backup_failure = outcome if error else None

    async def _publish(self, view: ClusterView, decision: Decision, *, acting: bool) -> None:
        now = trio.current_time()
        due = self._written_at is None or now - self._written_at >= self.refresh
        try:
            if due or not self._backup_known:
                await self._read_newest_backup()
            status = build_status(
                now=int(time.time()),
                me=self.me,
                view=view,
                decision=decision,
                acting=acting,
                addresses=self.addresses(),
                stale_after=self.stale_after,
                last_action=self._last_action,
                backup=self._backup,
                backup_failure=self._backup_failure,
                drill=await self.drills.status(),
                certificates=await self._certificates(now),
            )
            content = status.content()
            if content == self._content and not due:
                return
            await self.store.write_status(status.to_bytes())
        except EtcdmgrError as e:
            if str(e) != self._problem:
                log.warning("cannot write the cluster status to the store: %s", e)
                self._problem = str(e)
            return
        self._content, self._written_at, self._problem = content, now, ""

    async def _read_newest_backup(self) -> None:
        names = await self.store.list_backups()
        self._backup_known = True
        if not names:
            self._backup = None
            return
        newest = names[-1]
        if self._backup is not None and self._backup.name == newest:
            return
        taken = int(name_time(newest)[0].timestamp())
        try:
            info = await self.store.read_backup_info(newest)
            files = await self.store.backup_files(newest)
        except EtcdmgrError as e:  # e.g. pruned meanwhile: the name and time are still true
            log.info("cannot read backup %s for the status: %s", newest, e)
            self._backup = BackupStatus(newest, taken)
            return
        self._backup = BackupStatus(newest, info.timestamp or taken, sum(files.values()), info.etcd_version)

    async def _certificates(self, now: float) -> dict[str, int]:
        if self.certificates is not None and (
            self._certs_read_at is None or now - self._certs_read_at >= CERT_REFRESH
        ):
            self._certs = await trio.to_thread.run_sync(self.certificates)
            self._certs_read_at = now
        return self._certs
