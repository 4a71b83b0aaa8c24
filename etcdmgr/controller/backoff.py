"""How this leader's backups and learner promotions have been going: failures in a row, the last
error, and when the next attempt may start. A failing backup is retried with exponential backoff,
from one cycle interval up to the backup interval, instead of at every cycle (each attempt is a
full snapshot); so is a failing promotion. Plain data over the trio clock; the planner sees them
as BackupHealth and Promotion (controller/view.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from etcdmgr.controller.view import BackupHealth, Promotion

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


@dataclass
class _Failing:
    since: float
    failures: int
    retry_at: float
    error: str


@dataclass
class Promotions:
    """Failed promotions of learner members, by member id. A learner etcd refuses to promote (not
    in sync with the leader yet) is retried with exponential backoff, from `base` up to `cap`
    seconds, instead of at every cycle; the planner sees since when it has been failing
    (controller/rules.py: promote_learner removes one that fails for too long)."""

    base: float = 1.0
    cap: float = 30.0
    _failing: dict[int, _Failing] = field(default_factory=dict)

    def failed(self, member_id: int, error: str, now: float) -> float:
        """Record a failed promotion; the seconds until the next attempt."""
        f = self._failing.setdefault(member_id, _Failing(now, 0, now, error))
        f.failures += 1
        f.error = error
        delay = min(self.base * 2.0 ** min(f.failures - 1, 32), self.cap)
        f.retry_at = now + delay
        return delay

    def forget_all_but(self, learners: set[int]) -> None:
        """Forget members that are no learners any more (promoted or removed)."""
        for mid in set(self._failing) - learners:
            del self._failing[mid]

    def of(self, member_id: int, now: float) -> Promotion:
        f = self._failing.get(member_id)
        if f is None:
            return Promotion()
        return Promotion(now - f.since, max(0.0, f.retry_at - now), f.error)
