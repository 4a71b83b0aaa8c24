"""What the daemon tells its metrics: one call per event, nothing at all until a recorder is installed.

The controller, node and backup code call the functions below. Only `etcdmgr daemon` with
--etcd-manager-metrics-port installs a recorder (ops/prometheus.py); otherwise each call is
a no-op and prometheus_client is never imported.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import ParamSpec, Protocol, TypeVar


@dataclass(frozen=True)
class MemberCounts:
    """etcd's members as the leader saw them in one cycle."""

    healthy: int  # voting members that answer healthy
    unhealthy: int  # voting members that do not (or were added and never started)
    learners: int


class Recorder:
    """Receives the events. This base ignores them: it is what runs while metrics are off."""

    def cycle_started(self) -> None:
        """The leader began a control cycle."""

    def cycle_ended(self) -> None:
        """The control cycle ended (acted, waited, or failed)."""

    def decision(self, action: str) -> None:
        """The planner decided: `action` is the action's name (Wait when it changes nothing)."""

    def cluster_seen(self, members: MemberCounts | None, desired: int | None) -> None:
        """The members the leader saw (None: none could be listed) and the spec's member count."""

    def newest_backup(self, age: timedelta | None) -> None:
        """The age of the newest backup in the store (None: there is none)."""

    def backup_taken(self, seconds: float, size: int) -> None:
        """A backup was stored: how long it took and its size in bytes."""

    def backup_failed(self) -> None:
        """A backup was tried and failed."""

    def restore_finished(self, ok: bool) -> None:
        """A restore-backup command was carried out (ok) or failed."""

    def etcd_restarted(self) -> None:
        """etcd exited without being asked to, and is restarted."""


_recorder = Recorder()


def install(recorder: Recorder) -> None:
    """Send every event from now on to `recorder` (once, at daemon start)."""
    global _recorder
    _recorder = recorder


def cycle_started() -> None:
    _recorder.cycle_started()


def cycle_ended() -> None:
    _recorder.cycle_ended()


def decision(action: str) -> None:
    _recorder.decision(action)


def cluster_seen(members: MemberCounts | None, desired: int | None) -> None:
    _recorder.cluster_seen(members, desired)


def newest_backup(age: timedelta | None) -> None:
    _recorder.newest_backup(age)


def restore_finished(ok: bool) -> None:
    _recorder.restore_finished(ok)


def etcd_restarted() -> None:
    _recorder.etcd_restarted()


class Backup(Protocol):
    @property
    def seconds(self) -> float: ...
    @property
    def size(self) -> int: ...


P = ParamSpec("P")
B = TypeVar("B", bound=Backup)


def counts_backup(take: Callable[P, Awaitable[B]]) -> Callable[P, Awaitable[B]]:
    """Decorates the function that takes a backup: its result counts as a success, an error it
    raises as a failure (cancellation, e.g. at shutdown, is neither)."""

    @functools.wraps(take)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> B:
        try:
            result = await take(*args, **kwargs)
        except Exception:
            _recorder.backup_failed()
            raise
        _recorder.backup_taken(result.seconds, result.size)
        return result

    return counted
