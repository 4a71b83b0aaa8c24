"""The leader's loop: each cycle assert leadership, observe, plan, act; log one line per decision."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import trio

from etcdmgr.controller.act import Actor
from etcdmgr.controller.observe import Observer
from etcdmgr.controller.plan import plan
from etcdmgr.controller.view import ClusterView
from etcdmgr.etcd.errors import EtcdBinaryMissing
from etcdmgr.etcd.versions import EtcdBinaries, installed_binaries, pick_binaries
from etcdmgr.model import EtcdmgrError
from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.election import Candidacy, Term
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
    me: str
    directory: PeerDirectory
    candidacy: Candidacy
    caller: PeerCaller
    observer: Observer
    actor: Actor
    store: BackupStore
    bin_dirs: tuple[Path, ...]
    cycle_interval: float
    startup_grace: float = 0.0
    _last_state: str = ""
    _last_reason: str = ""
    _last_failure: str = ""
    _settle_until: float = 0.0
    _store_seen: object = field(default=None)

    async def _etcdctl(self) -> EtcdBinaries | None:
        """The newest installed etcdctl speaks to every 3.x member."""
        try:
            return pick_binaries(await installed_binaries(self.bin_dirs), any_version=True)
        except EtcdBinaryMissing:
            return None

    async def cycle(self, term: Term) -> bool:
        """One observe -> plan -> act round. True when it changed something."""
        healthy = self.directory.healthy()
        acked = await self.observer.assert_leadership(term, healthy)
        binaries = await self._etcdctl()
        view = await self.observer.view(acked, binaries)
        self._store_seen = (view.spec, tuple(c.name for c in view.commands))
        state = describe(view)
        if state != self._last_state:
            log.info("%s", state)
            self._last_state = state
        decision = plan(view)
        if decision.mutates or decision.reason != self._last_reason:
            log.info(
                "decision: %s%s",
                type(decision.action).__name__ + ": " if decision.mutates else "",
                decision.reason,
            )
            self._last_reason = decision.reason
        if not decision.mutates:
            return False
        await self.actor.act(decision.action, view, binaries)
        self._last_failure = ""
        return True

    async def _store_changed(self) -> bool:
        try:
            spec = await self.store.read_spec()
            commands = await self.store.list_commands()
        except EtcdmgrError:
            return False
        return (spec, tuple(c.name for c in commands.runnable)) != self._store_seen

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
        while True:
            term = self.candidacy.update(self.directory.healthy())
            self.caller.term = term
            if term is not None:
                try:
                    if await self.cycle(term):
                        self._settle_until = trio.current_time() + SETTLE_FOR
                except EtcdmgrError as e:
                    if str(e) != self._last_failure:  # once per distinct failure, not per retry
                        log.warning("control cycle failed: %s", e)
                    self._last_failure = str(e)
                    self._last_reason = ""
                except Exception:
                    # A bug must not take the node (and its etcd) down: log it, try again next cycle.
                    log.exception("control cycle crashed")
                    self._last_reason = ""
            settling = trio.current_time() < self._settle_until
            await self._pause(SETTLE_INTERVAL if settling else self.cycle_interval)
