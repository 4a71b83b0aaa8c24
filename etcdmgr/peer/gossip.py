"""Peers ping each other every second or so, and share the peers they verified themselves.
Seed addresses (no id known) are pinged too, until a healthy peer answers there.

What a ping carries is read in bounded time (peer/calls.py reads the caller's own endpoints,
then at most MAX_RECORDS entries of its list), and each entry is only a hint (see
peer/directory.py). The answer lists only verified peers, so it stays small whatever was sent.
"""

from __future__ import annotations

import logging

import trio

from etcdmgr.model import InvalidData, PeerEndpoint
from etcdmgr.model.ids import PeerId
from etcdmgr.peer.calls import Known, PingAnswer, PingArgs
from etcdmgr.peer.directory import PeerDirectory, Source
from etcdmgr.peer.methods import PING
from etcdmgr.peer.rpc_client import PeerCaller

log = logging.getLogger(__name__)


def learn_known(directory: PeerDirectory, known: Known) -> None:
    """Take hints from another peer's list: ids new to us only (hearsay never changes a record)."""
    for pid, eps in known.items():
        if pid not in directory.records:
            directory.learn(pid, eps, Source.GOSSIP)


def handle_ping(directory: PeerDirectory, caller: PeerId, args: PingArgs) -> PingAnswer:
    """A ping tells us the caller exists and what it knows; we answer with what we verified,
    and whether this node is fit to lead."""
    directory.learn(caller, args.endpoints, Source.PEER)
    learn_known(directory, args.known)
    unfit = directory.progress.unfit(trio.current_time())
    return PingAnswer(peer_id=directory.me, known=directory.verified(), unfit=unfit)


async def _ping(directory: PeerDirectory, caller: PeerCaller, peer_id: PeerId, timeout: float) -> None:
    args = PingArgs(endpoints=directory.my_endpoints, known=directory.verified())
    endpoints = directory.endpoints_of(peer_id)  # what caller.call is about to try
    sent = trio.current_time()
    try:
        answer = PingAnswer.from_wire(await caller.call(peer_id, PING, args.to_wire(), timeout=timeout))
        if answer.peer_id != peer_id:
            # Without TLS nothing else proves who answered: e.g. a host wiped and back under a new id.
            raise InvalidData(f"{answer.peer_id!r} answered at the address of {peer_id}")
        learn_known(directory, answer.known)
    except Exception as e:  # any failure only means: not healthy now
        directory.ping_failed(peer_id, str(e) or type(e).__name__, sent)
    else:
        directory.ping_ok(peer_id, endpoints, answer.unfit, sent)


async def ping_seed(
    directory: PeerDirectory, caller: PeerCaller, endpoint: PeerEndpoint, timeout: float
) -> None:
    """Ask who answers at a seed address; learn it, verified, once it answered twice under one id."""
    args = PingArgs(endpoints=directory.my_endpoints, known=directory.verified()).to_wire()
    known: Known = {}
    try:
        answer = PingAnswer.from_wire(
            await caller.client.call(endpoint, PING, args, expect_peer_id=None, timeout=timeout)
        )
        if answer.peer_id != directory.me:
            # Asked again expecting the id it named: with TLS its certificate must name it too.
            again = PingAnswer.from_wire(
                await caller.client.call(endpoint, PING, args, expect_peer_id=answer.peer_id, timeout=timeout)
            )
            if again.peer_id != answer.peer_id:
                raise InvalidData(f"answered as {answer.peer_id!r}, then as {again.peer_id!r}")
            known = again.known
    except Exception as e:  # any failure only means: nobody usable there now
        directory.seed_failed(endpoint, str(e) or type(e).__name__)
        return
    directory.seed_answered(endpoint, answer.peer_id)
    learn_known(directory, known)


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
            for endpoint in directory.due_seeds():
                nursery.start_soon(ping_seed, directory, caller, endpoint, max(interval, 1.0))
        # A closed connection starts the next round at once (peer/directory.py: recheck).
        with trio.move_on_after(interval):
            await directory.recheck_due.wait()
        directory.recheck_due = trio.Event()
