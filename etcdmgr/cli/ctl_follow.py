"""`ctl restore-backup NAME --wait`: follow a restore from the store until the cluster serves.

One line per phase as the store shows it: the leader verified the backup and claimed the
command (its claim), each node restored it (the claim lists them), the leader recorded the new
cluster (the command is gone), and each member serves clients again (the leader's status).
A failed restore ends it with the leader's reason (the command's failure mark), exit 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

import trio

from etcdmgr.cli import ctl_text as text
from etcdmgr.controller.claims import RestoreClaim
from etcdmgr.model import ClusterSpec, EtcdmgrError
from etcdmgr.model.ids import BackupName, ClusterToken, CommandName
from etcdmgr.model.status import ClusterStatus
from etcdmgr.store import BackupStore
from etcdmgr.store.layout import CLAIM_FILE, command_file_key

POLL = 0.5


class RestoreFailed(EtcdmgrError):
    """The restore failed, or did not finish in time: the message says why."""


@dataclass
class Progress:
    """What has been shown so far."""

    started: float = field(default_factory=time.monotonic)
    claim: RestoreClaim | None = None
    restored: set[str] = field(default_factory=set)
    recorded: bool = False
    serving: set[str] = field(default_factory=set)
    waiting_for: str = "a leader to claim the command"

    def line(self, what: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {what}", flush=True)


async def _status(store: BackupStore) -> ClusterStatus | None:
    try:
        raw = await store.read_status()
        return ClusterStatus.from_bytes(raw) if raw else None
    except EtcdmgrError:
        return None


def _restored(status: ClusterStatus, claim: RestoreClaim | None, before: ClusterToken | None) -> bool:
    """Whether the status shows the restored cluster: the one claimed, or, when the restore ended
    before its claim was seen, one other than the cluster before it."""
    if status.cluster_token is None:
        return False
    return status.cluster_token == claim.cluster_token if claim else status.cluster_token != before


async def _step(
    store: BackupStore,
    command: CommandName,
    backup: BackupName,
    spec: ClusterSpec,
    seen: Progress,
    before: ClusterToken | None,
) -> bool:
    """Look once and print what is new; True once the restored cluster serves."""
    if not seen.recorded:
        listing = await store.list_commands()
        if (failed := listing.failed.get(command)) is not None:
            raise RestoreFailed(
                f"restore-backup command {command} failed ({failed.failed_at}): {failed.reason}"
            )
        if command in {c.name for c in listing.commands}:
            raw = await store.read_claim(command_file_key(command, CLAIM_FILE))
            claim = RestoreClaim.from_bytes(raw) if raw else None
            if claim is not None and (seen.claim is None or claim.cluster_token != seen.claim.cluster_token):
                seen.claim, seen.restored = claim, set()
                seen.line(
                    f"verify: leader {claim.leader} checked backup {backup} (checksums, gzip) and claimed "
                    f"the command; restoring it as cluster {claim.cluster_token}"
                )
                seen.waiting_for = "the nodes to restore the backup"
            for node in sorted(set(claim.restored if claim else ()) - seen.restored):
                seen.restored.add(node)
                seen.line(
                    f"restore: node {node} restored backup {backup} ({len(seen.restored)} of {spec.member_count}, quarantined)"
                )
            return False
        # The command and its claim are gone: phases that ran between two looks are told from
        # the leader's status, once that shows the restored cluster.
        status = await _status(store)
        if status is None or not _restored(status, seen.claim, before):
            return False
        if seen.claim is None:
            seen.line(
                f"verify: leader {status.leader} checked backup {backup} (checksums, gzip) and claimed "
                f"the command; restored it as cluster {status.cluster_token} before this could look"
            )
        for p in sorted(status.peers, key=lambda p: p.peer_id):
            if p.cluster_token == status.cluster_token and p.peer_id not in seen.restored:
                seen.restored.add(p.peer_id)
                seen.line(
                    f"restore: node {p.peer_id} restored backup {backup} ({len(seen.restored)} of {spec.member_count}, quarantined)"
                )
        seen.recorded = True
        seen.line(
            "restore: the leader recorded the restored cluster and its spec; lifting the quarantine next"
        )
        seen.waiting_for = "the members to serve clients"
    status = await _status(store)
    if status is None or not _restored(status, seen.claim, before):
        return False
    for p in status.peers:
        if p.serving and p.cluster_token == status.cluster_token and p.peer_id not in seen.serving:
            seen.serving.add(p.peer_id)
            seen.line(
                f"quarantine lifted: {p.peer_id} serves clients ({len(seen.serving)} of {spec.member_count})"
            )
    return len(seen.serving) >= spec.member_count


async def follow_restore(
    store: BackupStore, command: CommandName, backup: BackupName, spec: ClusterSpec, timeout: timedelta
) -> None:
    before = await _status(store)
    token = before.cluster_token if before else None
    seen = Progress()
    with trio.move_on_after(timeout.total_seconds()):
        # The store has no change notification: poll it.
        while not await _step(store, command, backup, spec, seen, token):  # noqa: ASYNC110
            await trio.sleep(POLL)
        seen.line(f"done: backup {backup} restored; the cluster serves clients")
        print(f"restore of backup {backup} took {text.age(time.monotonic() - seen.started)}")
        return
    raise RestoreFailed(
        f"no end of the restore within {text.age(timeout.total_seconds())} (waiting for {seen.waiting_for}); "
        "it may go on: see ctl status and ctl list-commands"
    )
