"""How this leader's backups have been going: failures in a row, the last error, and when the
next attempt may start. A failing backup is retried with exponential backoff, from one cycle
interval up to the backup interval, instead of at every cycle (each attempt is a full snapshot).
Plain data over the trio clock; the planner sees it as BackupHealth (controller/view.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from etcdmgr.controller.view import BackupHealth

_NUMBERS = re.compile(r"\d+")


@dataclass
class BackupAttempts:
    base: float  # seconds before the first retry
    cap: float  # the longest wait between attempts (the backup interval)
    failures: int = 0
    error: str = ""
    retry_at: float = 0.0
    # When the snapshot being compressed and stored in the background was taken (trio clock):
    # until it is stored, it is the newest backup.
    pending_since: float | None = None
    _reported: str = ""

    def failed(self, error: str, now: float) -> bool:
        """Record a failure. True when its reason is new, so worth a log line: numbers aside,
        as backup names, sizes and timings differ at every attempt."""
        self.failures += 1
        self.error = error
        self.retry_at = now + self.delay()
        reason = _NUMBERS.sub("#", error)
        new, self._reported = reason != self._reported, reason
        return new

    def delay(self) -> float:
        """The wait after the current run of failures."""
        return min(self.base * 2.0 ** min(self.failures - 1, 32), self.cap)

    def succeeded(self) -> int:
        """Record a success; the number of failures it ends."""
        ended = self.failures
        self.failures, self.error, self.retry_at, self._reported = 0, "", 0.0, ""
        return ended

    def health(self, age: timedelta | None, now: float) -> BackupHealth:
        """``age``: of the newest backup in the store; a snapshot being stored counts as newer."""
        if self.pending_since is not None:
            pending = timedelta(seconds=max(0.0, now - self.pending_since))
            age = pending if age is None else min(age, pending)
        return BackupHealth(age, self.failures, self.error, max(0.0, self.retry_at - now))
