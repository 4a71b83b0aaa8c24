"""Whether this node's control loop makes progress, and so is fit to lead.

Pings only prove that a daemon answers; a leader whose store is unreadable or hung, or whose
every cycle fails, answers pings too. So each node also judges its own loop: a leader by its
cycles, a follower by a health check of what a leader needs (reading the store). A node that
has made no progress for the stall timeout says it is not fit to lead (in its Ping answers),
and its peers pass it over. After such a stall it is fit again only once it has made progress
for one more stall timeout, so a node that fails only while it leads cannot take leadership
back every few seconds.

Pure: every method takes the time (the trio clock) from its caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_ERROR = 300  # characters of the last error a Ping answer carries


@dataclass
class Progress:
    stall_timeout: float
    last_ok: float = 0.0  # when the loop last made progress
    error: str | None = None  # why it failed since then
    busy_since: float | None = None  # carrying out an action (those have deadlines of their own)
    recovering_since: float | None = None  # progress again after a stall
    broken: str | None = None  # this node can never lead (e.g. no usable backup store)

    @classmethod
    def never_stalls(cls) -> Progress:
        return cls(math.inf)

    def ok(self, now: float) -> None:
        """A cycle (or, off leadership, a health check) completed."""
        if now - self.last_ok > self.stall_timeout:
            self.recovering_since = now
        self.last_ok, self.error = now, None

    def failed(self, error: str) -> None:
        """A cycle or check failed; the stall clock keeps running from the last progress."""
        first = error.strip().splitlines()[0] if error.strip() else "failed"
        self.error = first if len(first) <= MAX_ERROR else first[: MAX_ERROR - 3] + "..."

    def start_action(self, now: float) -> None:
        self.busy_since = now

    def end_action(self, now: float) -> None:
        """The stall clock stands still while an action runs: a long restore is work, not a
        stall. Whether the cycle made progress is said next (ok or failed)."""
        if self.busy_since is not None:
            self.last_ok += now - self.busy_since
            self.busy_since = None

    def deadline(self) -> float:
        """When the loop stalls unless it makes progress before."""
        return math.inf if self.busy_since is not None else self.last_ok + self.stall_timeout

    def unfit(self, now: float) -> str | None:
        """Why this node should not lead now, or None."""
        if self.broken is not None:
            return self.broken
        if self.busy_since is not None:
            return None
        stalled = now - self.last_ok
        if stalled > self.stall_timeout:
            why = f": {self.error}" if self.error else ""
            return f"its control loop has made no progress for {stalled:.0f}s{why}"
        if self.recovering_since is not None:
            left = self.recovering_since + self.stall_timeout - now
            if left > 0:
                return f"its control loop works again after a stall; fit to lead in {math.ceil(left)}s"
        return None
