"""One node call on several peers at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import trio

from etcdmgr.controller.errors import ActionFailed
from etcdmgr.model import EtcdmgrError


async def each(peer_ids: Iterable[str], fn: Callable[[str], Awaitable[None]]) -> None:
    """Run `fn(peer_id)` for every peer concurrently; raise one ActionFailed naming every peer
    that failed, after all have finished."""
    errors: list[str] = []

    async def one(pid: str) -> None:
        try:
            await fn(pid)
        except EtcdmgrError as e:
            errors.append(f"{pid}: {e}")

    async with trio.open_nursery() as nursery:
        for pid in peer_ids:
            nursery.start_soon(one, pid)
    if errors:
        raise ActionFailed("; ".join(errors))
