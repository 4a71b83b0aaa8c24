"""Peers ping each other every second or so, and share the peers they know of."""

from __future__ import annotations

import logging
from typing import Any

import trio

from etcdmgr.model import InvalidData, PeerEndpoint
from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.methods import PING
from etcdmgr.peer.rpc_client import PeerCaller

log = logging.getLogger(__name__)


def endpoints_to_wire(endpoints: tuple[PeerEndpoint, ...]) -> list[dict[str, Any]]:
    return [e.to_json() for e in endpoints]


def endpoints_from_wire(raw: Any) -> tuple[PeerEndpoint, ...]:
    if not isinstance(raw, list):
        raise InvalidData("endpoints should be a list")
    return tuple(PeerEndpoint.from_json(e) for e in raw)


def known_to_wire(directory: PeerDirectory) -> dict[str, list[dict[str, Any]]]:
    return {pid: endpoints_to_wire(eps) for pid, eps in directory.known().items()}


def learn_known(directory: PeerDirectory, raw: Any) -> None:
    if not isinstance(raw, dict):
        raise InvalidData("known peers should be a map")
    for pid, eps in raw.items():
        if isinstance(pid, str):
            directory.learn(pid, endpoints_from_wire(eps))


def handle_ping(directory: PeerDirectory, caller: str, args: dict[str, Any]) -> dict[str, Any]:
    """A ping tells us the caller exists and what it knows; we answer with what we know."""
    learn_known(directory, args.get("known") or {})
    directory.learn(caller, endpoints_from_wire(args.get("endpoints") or []))
    return {"peerId": directory.me, "known": known_to_wire(directory)}


async def _ping(directory: PeerDirectory, caller: PeerCaller, peer_id: str, timeout: float) -> None:
    args = {"endpoints": endpoints_to_wire(directory.my_endpoints), "known": known_to_wire(directory)}
    try:
        result = await caller.call(peer_id, PING, args, timeout=timeout)
        if result.get("peerId") != peer_id:
            # Without TLS nothing else proves who answered: e.g. a host wiped and back under a new id.
            raise InvalidData(f"{result.get('peerId')!r} answered at the address of {peer_id}")
        learn_known(directory, result.get("known") or {})
    except Exception as e:  # any failure only means: not healthy now
        directory.ping_failed(peer_id, str(e) or type(e).__name__)
    else:
        directory.ping_ok(peer_id)


async def gossip_loop(
    directory: PeerDirectory,
    caller: PeerCaller,
    interval: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    while True:
        async with trio.open_nursery() as nursery:
            for peer_id in list(directory.records):
                nursery.start_soon(_ping, directory, caller, peer_id, max(interval, 1.0))
        await trio.sleep(interval)
