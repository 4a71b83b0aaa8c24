"""The control loop: as leader, each cycle assert leadership, observe, plan, act, and log one line per
decision; as follower, check that this node could lead and watch for a silent leader."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import trio

from etcdmgr.controller.act import Actor
from etcdmgr.controller.actions import Decision
from etcdmgr.controller.errors import ActionFailed
from etcdmgr.controller.observe import Observer
from etcdmgr.controller.plan import plan
from etcdmgr.controller.status import StatusWriter
from etcdmgr.controller.view import ClusterView
from etcdmgr.controller.view_metrics import record_view
from etcdmgr.etcd.errors import EtcdBinaryMissing
from etcdmgr.etcd.versions import EtcdBinaries, installed_binaries, pick_binaries
from etcdmgr.model import EtcdmgrError
from etcdmgr.ops import metrics
from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.election import Candidacy, Follower, Silence, Term, leader_of
from etcdmgr.peer.progress import Progress
from etcdmgr.peer.rpc_client import PeerCaller
from etcdmgr.store import BackupStore

log = logging.getLogger(__name__)

# After a change, look again soon: the next step (e.g. lifting quarantine) usually follows quickly.
SETTLE_INTERVAL = 0.2
SETTLE_FOR = 30.0


def describe(view: ClusterView) -> str:
    """The cluster state block the leader logs when it changes (as the original logs it)."""
    lines = ["etcd cluster state:", "  members:"]
    for m in view.members or ():
        lines.append(
            f"    name={m.name or '(not started)'} id={m.member_id:x} peerURLs={','.join(m.peer_urls)} "
            f"clientURLs={','.join(m.client_urls)} healthy={m.healthy}{' learner' if m.is_learner else ''}"
        )
    lines.append("  peers:")
    for pid, info in sorted(view.peers.items()):
        state = info.etcd_state
        etcd = (
            f"cluster={state.cluster.cluster_token} version={state.etcd_version}"
            f"{' quarantined' if state.quarantined else ''} running={info.etcd_running}"
            if state
            else "no etcd state"
        )
        lines.append(
            f"    {pid} peerURLs={','.join(info.node.peer_urls)} clientURLs={','.join(info.node.client_urls)} {etcd}"
        )
    return "\n".join(lines)


@dataclass
class Controller:
    """Leads while this node is the leader of its healthy peers (peer/election.py); otherwise
    checks that it could (the store answers) and watches for a silent leader. Either way it
    reports its progress (peer/progress.py), which decides whether it is fit to lead."""

    me: str
    directory: PeerDirectory
    candidacy: Candidacy
    caller: PeerCaller
    observer: Observer
    actor: Actor
    store: BackupStore
    bin_dirs: tuple[Path, ...]
    cycle_interval: float
    status: StatusWriter
    startup_grace: float = 0.0
    follower: Follower = field(default_factory=Follower)
    _last_state: str = ""
    _last_reason: str = ""
    _last_failure: str = ""
    _settle_until: float = 0.0
    _store_seen: object = field(default=None)
    _store_checked_at: float = -math.inf
    _silence: Silence | None = None

    @property
    def progress(self) -> Progress:
        return self.directory.progress

    async def _etcdctl(self) -> EtcdBinaries | None:
        """The newest installed etcdctl speaks to every 3.x member."""
        try:
            return pick_binaries(await installed_binaries(self.bin_dirs), any_version=True)
        except EtcdBinaryMissing:
            return None

    async def _observe_and_plan(self, term: Term) -> tuple[ClusterView, Decision, EtcdBinaries | None]:
        healthy = self.directory.healthy()
        acked = await self.observer.assert_leadership(term, healthy)
        binaries = await self._etcdctl()
        view = await self.observer.view(acked, binaries)
        record_view(view)
        self._store_seen = (view.spec, tuple(c.name for c in view.commands))
        state = describe(view)
        if state != self._last_state:
            log.info("%s", state)
            self._last_state = state
        decision = plan(view)
        action = type(decision.action).__name__
        metrics.decision(action)
        if decision.mutates or decision.reason != self._last_reason:
            log.info(
                "decision: %s%s",
                action + ": " if decision.mutates else "",
                decision.reason,
                extra={"action": action, "reason": decision.reason},
            )
            self._last_reason = decision.reason
        return view, decision, binaries

    async def cycle(self, term: Term) -> bool:
        """One observe -> plan -> act round. True when it changed something.

        Observing and planning must finish before the loop counts as stalled (then this node is
        not fit to lead and steps down); an action has deadlines of its own, and the time it
        takes does not count towards a stall.
        """
        now = trio.current_time()
        deadline = self.progress.deadline()
        # A node that leads although stalled (no peer is fit) still gets a whole cycle.
        with trio.move_on_at(deadline if deadline > now else now + self.progress.stall_timeout) as scope:
            view, decision, binaries = await self._observe_and_plan(term)
        if scope.cancelled_caught:
            raise ActionFailed(
                f"observing the cluster did not finish within the leader stall timeout "
                f"({self.progress.stall_timeout:.0f}s since the last progress); cancelled"
            )
        async with self.status.around(view, decision):  # for `ctl status`
            if not decision.mutates:
                return False
            self.progress.start_action(trio.current_time())
            try:
                return await self.actor.act(decision.action, view, binaries)
            finally:
                self.progress.end_action(trio.current_time())

    async def _lead(self, term: Term) -> None:
        try:
            if await self.cycle(term):
                self._settle_until = trio.current_time() + SETTLE_FOR
        except EtcdmgrError as e:
            self._failed(str(e), "control cycle failed")
            self._last_reason = ""
        except Exception as e:
            # A bug must not take the node (and its etcd) down: log it, try again next cycle.
            log.exception("control cycle crashed")
            self.progress.failed(f"the control cycle crashed: {type(e).__name__}: {e}")
            self._last_reason = ""
        else:
            self._succeeded()

    async def _follow(self) -> None:
        """Check that this node could lead (its store answers), and say when no leader acts.

        A store that answers is read again after a third of the stall timeout, not every cycle:
        often enough that a follower whose store fails is unfit before it would be asked to lead,
        and on an object store each read is a paid request (the leader polls it anyway). One that
        failed is read every cycle, to see at once when it is back."""
        now = trio.current_time()
        if self._last_failure or now >= self._store_checked_at + self.progress.stall_timeout / 3:
            self._store_checked_at = now
            try:
                await self._read_store()
            except EtcdmgrError as e:
                self._failed(str(e), "cannot lead: the backup store check failed")
            else:
                self._succeeded()
        assert self._silence is not None
        now = trio.current_time()
        match self._silence.check(self.follower.heard, now):
            case True:
                unfit = self.directory.unfit()
                expected = leader_of(self.directory.healthy(), unfit)
                passed_over = "".join(f"; {p} is not fit to lead: {why}" for p, why in sorted(unfit.items()))
                log.warning(
                    "no leader has asserted itself here for %.0fs: the cluster is not managed (no backups, "
                    "repairs or restores) until one does. Peer %s should lead: see its log%s",
                    self._silence.limit,
                    expected,
                    passed_over,
                )
            case False:
                log.info("leader %s asserts itself again", self.follower.leader_id)

    def _failed(self, error: str, what: str) -> None:
        self.progress.failed(error)
        if error != self._last_failure:  # once per distinct failure, not per retry
            log.warning("%s: %s", what, error)
        self._last_failure = error

    def _succeeded(self) -> None:
        self.progress.ok(trio.current_time())
        if self._last_failure:
            log.info("the control loop works again")
        self._last_failure = ""

    async def _read_store(self) -> tuple[object, tuple[str | None, ...]]:
        """What the leader reads of the store each cycle (raises StoreError when it cannot)."""
        spec = await self.store.read_spec()
        await self.store.read_created()
        commands = await self.store.list_commands()
        return spec, tuple(c.name for c in commands.runnable)

    async def _store_changed(self) -> bool:
        try:
            return await self._read_store() != self._store_seen
        except EtcdmgrError:
            return False

    async def _pause(self, interval: float) -> None:
        """Wait for the next cycle; wake early when a peer appears or the store changes."""
        with trio.move_on_after(interval):
            async with trio.open_nursery() as nursery:

                async def peers() -> None:
                    await self.directory.changed.wait()
                    nursery.cancel_scope.cancel()

                async def store() -> None:
                    # The store has no change notification: poll it.
                    while not await self._store_changed():  # noqa: ASYNC110
                        await trio.sleep(self.store.poll_interval)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(peers)
                if self.candidacy.term is not None:
                    nursery.start_soon(store)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep(self.startup_grace)
        self._silence = Silence(self.progress.stall_timeout, since=trio.current_time())
        while True:
            term = self.candidacy.update(self.directory.healthy(), self.directory.unfit())
            if term is not None and term is not self.caller.term:
                self._last_reason = ""  # a new term logs its first decision, whatever the last one was
            self.caller.term = term
            if term is not None:
                metrics.cycle_started()
                await self._lead(term)
                metrics.cycle_ended()
                self._silence.since = trio.current_time()  # a follower again counts from here
            else:
                await self._follow()
            settling = trio.current_time() < self._settle_until
            await self._pause(SETTLE_INTERVAL if settling else self.cycle_interval)
