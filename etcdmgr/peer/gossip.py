"""Peers ping each other every second or so, and share the peers they verified themselves.

What a ping carries is read in bounded time: the caller's own endpoints, then at most
MAX_RECORDS entries of its list, each only a hint (see peer/directory.py). The answer lists
only verified peers, so it stays small whatever was sent.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import trio

from etcdmgr.model import InvalidData, PeerEndpoint
from etcdmgr.peer.directory import MAX_ENDPOINTS, MAX_RECORDS, PeerDirectory, Source
from etcdmgr.peer.methods import PING
from etcdmgr.peer.rpc_client import PeerCaller

log = logging.getLogger(__name__)


def endpoints_to_wire(endpoints: tuple[PeerEndpoint, ...]) -> list[dict[str, Any]]:
    return [e.to_json() for e in endpoints]


def endpoints_from_wire(raw: Any) -> tuple[PeerEndpoint, ...]:
    if not isinstance(raw, list):
        raise InvalidData("endpoints should be a list")
    return tuple(PeerEndpoint.from_json(e) for e in raw[:MAX_ENDPOINTS])  # the rest is never used


def known_to_wire(directory: PeerDirectory) -> dict[str, list[dict[str, Any]]]:
    return {pid: endpoints_to_wire(eps) for pid, eps in directory.verified().items()}


def learn_known(directory: PeerDirectory, raw: Any) -> None:
    """Take hints from another peer's list: its first MAX_RECORDS entries, ids new to us only."""
    if not isinstance(raw, dict):
        raise InvalidData("known peers should be a map")
    for pid, eps in itertools.islice(raw.items(), MAX_RECORDS):
        if not isinstance(pid, str) or pid in directory.records:
            continue  # hearsay never changes a record, so its endpoints need no reading
        try:
            endpoints = endpoints_from_wire(eps)
        except InvalidData:
            continue  # one bad entry in someone else's list is no reason to refuse the rest
        directory.learn(pid, endpoints, Source.GOSSIP)


def handle_ping(directory: PeerDirectory, caller: str, args: dict[str, Any]) -> dict[str, Any]:
    """A ping tells us the caller exists and what it knows; we answer with what we verified."""
    directory.learn(caller, endpoints_from_wire(args.get("endpoints") or []), Source.PEER)
    learn_known(directory, args.get("known") or {})
    return {"peerId": directory.me, "known": known_to_wire(directory)}


async def _ping(directory: PeerDirectory, caller: PeerCaller, peer_id: str, timeout: float) -> None:
    args = {"endpoints": endpoints_to_wire(directory.my_endpoints), "known": known_to_wire(directory)}
    endpoints = directory.endpoints_of(peer_id)  # what caller.call is about to try
    try:
        result = await caller.call(peer_id, PING, args, timeout=timeout)
        if result.get("peerId") != peer_id:
            # Without TLS nothing else proves who answered: e.g. a host wiped and back under a new id.
            raise InvalidData(f"{result.get('peerId')!r} answered at the address of {peer_id}")
        learn_known(directory, result.get("known") or {})
    except Exception as e:  # any failure only means: not healthy now
        directory.ping_failed(peer_id, str(e) or type(e).__name__)
    else:
        directory.ping_ok(peer_id, endpoints)


async def gossip_loop(
    directory: PeerDirectory,
    caller: PeerCaller,
    interval: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    while True:
        directory.prune()
        async with trio.open_nursery() as nursery:
            for peer_id in directory.due():
                nursery.start_soon(_ping, directory, caller, peer_id, max(interval, 1.0))
        await trio.sleep(interval)
