"""Claims in the store: a restore is carried out by one leader at a time, and a failed one is
marked so that no leader waits behind it.

Creating a cluster is claimed with the created marker itself (``create_created_marker``, an
exclusive create, before any member starts). A restore is claimed with a file of our own beside
the command, ``control/<command>/etcdmgr-claim.json``, holding the leader and the new cluster's
token; the original never reads it. As each node restores, the leader adds it to the claim
(``restored``), so `ctl restore-backup --wait` can follow the restore from the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import trio

from etcdmgr.model.ids import CommandName
from etcdmgr.store import BackupStore, StoreError
from etcdmgr.store.layout import CLAIM_FILE, command_file_key

log = logging.getLogger(__name__)

# Longer than a restore takes: a claim left unchanged this long, with its command still queued,
# belongs to a leader that died (a live one would have finished or marked the command failed).
RESTORE_CLAIM_TTL = 3600.0


@dataclass(frozen=True)
class RestoreClaim:
    leader: str
    cluster_token: str
    claimed_at: str  # UTC, RFC 3339; for people reading it
    restored: tuple[str, ...] = ()  # nodes that restored the backup so far

    def to_bytes(self) -> bytes:
        doc: dict[str, object] = {
            "leader": self.leader,
            "clusterToken": self.cluster_token,
            "time": self.claimed_at,
        }
        if self.restored:
            doc["restored"] = list(self.restored)
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RestoreClaim | None:
        """The claim, or None when it cannot be read."""
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str) for k in ("leader", "clusterToken")
        ):
            return None
        restored = doc.get("restored")
        nodes = tuple(n for n in restored if isinstance(n, str)) if isinstance(restored, list) else ()
        return cls(doc["leader"], doc["clusterToken"], str(doc.get("time", "")), nodes)


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Claims:
    """The claims one leader (``me``) makes in ``store``."""

    def __init__(self, store: BackupStore, me: str) -> None:
        self.store = store
        self.me = me
        self._last_wait = ""
        self._waiting_since: dict[bytes, float] = {}  # claim body -> when this leader first saw it
        self._progress = trio.Lock()  # one rewrite of a claim at a time, the newest last
        self._mine: dict[CommandName, RestoreClaim] = {}  # the claims this leader holds

    async def restore(self, command: CommandName, token: str, followers: Collection[str]) -> bool:
        """Claim carrying out restore ``command`` into new cluster ``token``. False (logged once)
        while another leader holds it and may still be at work. A claim held by this node (an
        attempt that crashed or failed), by a peer that now follows this leader (so it no longer
        leads), or left unchanged for RESTORE_CLAIM_TTL (its holder died) is taken over."""
        key = command_file_key(command, CLAIM_FILE)
        claim = RestoreClaim(self.me, token, _utc_now())
        mine = claim.to_bytes()
        if await self.store.claim(key, mine):
            self._mine[command] = claim
            return True
        raw = await self.store.read_claim(key) or b""
        held = RestoreClaim.from_bytes(raw)
        if held is not None and held.leader != self.me and held.leader not in followers:
            # Timed on this leader's monotonic clock: the claim's own time may come from a wrong clock.
            since = self._waiting_since.setdefault(raw, trio.current_time())
            if trio.current_time() - since < RESTORE_CLAIM_TTL:
                wait = (
                    f"restore-backup command {command} is claimed by leader {held.leader} "
                    f"(cluster {held.cluster_token}, since {held.claimed_at or 'an unknown time'}); "
                    f"waiting for it, at most {RESTORE_CLAIM_TTL / 60:.0f} min. If that node is gone for "
                    f"good, remove the command with `ctl delete-command {command}` and queue the restore again"
                )
                if wait != self._last_wait:
                    log.warning("%s", wait)
                    self._last_wait = wait
                return False
        self._waiting_since.pop(raw, None)
        await self.store.write_claim(key, mine)
        self._mine[command] = claim
        log.info(
            "took over restore-backup command %s from %s",
            command,
            f"leader {held.leader} (cluster {held.cluster_token})" if held else "an unreadable claim",
        )
        return True

    async def progress(self, command: CommandName, restored: Sequence[str]) -> None:
        """Record in this leader's claim on ``command`` which nodes restored the backup so far.
        Only shown to people: a store that cannot take it is logged, the restore goes on."""
        async with self._progress:
            claim = replace(self._mine[command], restored=tuple(sorted(restored)))
            try:
                await self.store.write_claim(command_file_key(command, CLAIM_FILE), claim.to_bytes())
            except StoreError as e:
                log.info("cannot record the restore's progress in the store: %s", e)

    async def mark_failed(self, command: CommandName, reason: str) -> None:
        """Mark ``command`` failed beside it, so listings show it and no leader waits behind it.
        A store that cannot take the mark is logged: this leader skips the command anyway."""
        try:
            await self.store.mark_command_failed(command, reason, datetime.now(UTC))
        except StoreError as e:
            log.warning("cannot mark command %s failed in the store: %s", command, e)
