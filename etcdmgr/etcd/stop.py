"""The one way an etcd is stopped: SIGTERM, a grace period, then SIGKILL."""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable

import trio

from etcdmgr.etcd.errors import EtcdError

log = logging.getLogger(__name__)

# A member without quorum can take 10-20 s to exit after SIGTERM; killing it earlier is safe
# (etcd is crash-consistent) but loses the clean shutdown.
DEFAULT_STOP_GRACE = 15.0
KILL_WAIT = 10.0


async def terminate(
    what: str, send: Callable[[signal.Signals], bool], exited: Callable[[], Awaitable[object]], grace: float
) -> None:
    """Stop `what`: SIGTERM, SIGKILL after `grace` seconds (at once when `grace` is 0). `send`
    signals the process and returns False when it is gone already; `exited` returns once it has
    exited."""
    steps = (
        ((signal.SIGTERM, grace), (signal.SIGKILL, KILL_WAIT))
        if grace > 0
        else ((signal.SIGKILL, KILL_WAIT),)
    )
    for sig, wait in steps:
        if not send(sig):
            return
        if sig == signal.SIGKILL and grace > 0:
            log.warning("%s ignored SIGTERM for %.1f s; killed it", what, grace)
        with trio.move_on_after(wait):
            await exited()
            return
    raise EtcdError(f"{what} did not exit after SIGKILL")
