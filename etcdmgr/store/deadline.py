"""Blocking store calls in worker threads under a deadline (shared by every store and discovery).

The thread of a call past its deadline cannot be interrupted (a hung NFS read, a stalled
socket), so it is abandoned; each store lends its calls only a few threads (``THREADS``), so hung
calls never starve the rest of the daemon of worker threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio

from etcdmgr.model.errors import EtcdmgrError

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0  # seconds one store call may take (--store-timeout)
THREADS = 4  # worker threads one store may hold, hung ones included
BULK_BYTES_PER_SECOND = 1e6  # a backup copy slower than this counts as hung


def bulk_timeout(timeout: float, size: int) -> float:
    """The deadline of a call copying ``size`` bytes."""
    return timeout + size / BULK_BYTES_PER_SECOND


async def in_thread(
    limiter: trio.CapacityLimiter,
    limit: float,
    too_slow: Callable[[float], EtcdmgrError],
    fn: Callable[..., T],
    *args: Any,
) -> T:
    """``fn(*args)`` in a worker thread; ``too_slow(limit)`` is raised when it outlives ``limit``."""
    try:
        with trio.fail_after(limit):
            return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True, limiter=limiter)
    except trio.TooSlowError:
        raise too_slow(limit) from None
