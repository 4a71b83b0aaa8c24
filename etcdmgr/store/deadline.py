"""Blocking store calls in worker threads under a deadline (shared by every store and discovery).

The thread of a call past its deadline cannot be interrupted (a hung NFS read, a stalled
socket), so it is abandoned; each store lends its calls only a few threads (``THREADS``), so hung
calls never starve the rest of the daemon of worker threads.

Outside a trio run (`ctl` commands that only read or write the store, which skip importing trio
to start quickly) a call runs in a plain daemon thread, joined with the same deadline: the
awaiting coroutine then never suspends, so it can be driven without an event loop.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from etcdmgr.model.errors import EtcdmgrError

if TYPE_CHECKING:
    import trio

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0  # seconds one store call may take (--store-timeout)
THREADS = 4  # worker threads one store may hold, hung ones included
BULK_BYTES_PER_SECOND = 1e6  # a backup copy slower than this counts as hung


def bulk_timeout(timeout: float, size: int) -> float:
    """The deadline of a call copying ``size`` bytes."""
    return timeout + size / BULK_BYTES_PER_SECOND


def in_trio_run() -> bool:
    """Whether a trio run is active here (never true while trio is not even imported)."""
    lowlevel = getattr(sys.modules.get("trio"), "lowlevel", None)
    if lowlevel is None:
        return False
    try:
        lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


async def in_thread(
    limiter: Callable[[], trio.CapacityLimiter],
    limit: float,
    too_slow: Callable[[float], EtcdmgrError],
    fn: Callable[..., T],
    *args: Any,
) -> T:
    """``fn(*args)`` in a worker thread (under trio: one of ``limiter()``'s); ``too_slow(limit)``
    is raised when it outlives ``limit``."""
    if not in_trio_run():
        return _in_daemon_thread(limit, too_slow, fn, *args)
    import trio

    try:
        with trio.fail_after(limit):
            return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True, limiter=limiter())
    except trio.TooSlowError:
        raise too_slow(limit) from None


def _in_daemon_thread(
    limit: float, too_slow: Callable[[float], EtcdmgrError], fn: Callable[..., T], *args: Any
) -> T:
    """``fn(*args)`` in a daemon thread (one that hangs never holds the process's exit up)."""
    outcome: list[tuple[bool, Any]] = []

    def call() -> None:
        try:
            outcome.append((True, fn(*args)))
        except BaseException as e:  # handed to the caller below
            outcome.append((False, e))

    thread = threading.Thread(target=call, name="store call", daemon=True)
    thread.start()
    thread.join(limit)
    if not outcome:
        raise too_slow(limit)
    ok, value = outcome[0]
    if not ok:
        raise value
    result: T = value
    return result
