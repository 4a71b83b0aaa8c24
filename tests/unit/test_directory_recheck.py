"""A closed connection is news: the peer is pinged again at once, and unhealthy at once if that
ping fails; a silent peer is still unhealthy only after the peer timeout."""

from __future__ import annotations

from typing import Any, cast

import trio
import trio.testing

from etcdmgr.model.ids import PeerId
from etcdmgr.peer.calls import PingAnswer
from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.errors import PeerUnreachable
from etcdmgr.peer.gossip import gossip_loop
from etcdmgr.peer.rpc_client import PeerCaller

from .test_directory import ME, TIMEOUT, directory, ep, verified_peer


async def test_a_closed_connection_and_a_failed_ping_make_a_peer_unhealthy_at_once() -> None:
    d = directory()
    verified_peer(d, "p-leader", ep(2))
    verified_peer(d, "p-other", ep(3))
    changed = d.changed
    d.connection_closed(ep(2)[0])
    assert d.recheck_due.is_set()
    assert d.healthy() == [ME, "p-leader", "p-other"], "a close alone decides nothing"
    d.ping_failed("p-leader", "cannot connect to 127.0.0.2:8000", sent=trio.current_time())
    assert d.healthy() == [ME, "p-other"]
    assert changed.is_set(), "the control loop looks again (a new leader) at once"


async def test_a_closed_connection_answered_again_changes_nothing() -> None:
    d = directory()
    verified_peer(d, "p-leader", ep(2))
    d.connection_closed(ep(2)[0])
    d.ping_ok("p-leader", ep(2), sent=trio.current_time())
    d.ping_failed("p-leader", "a later ping timed out", sent=trio.current_time())
    assert d.healthy() == [ME, "p-leader"], "one late ping is not a closed connection"


async def test_a_ping_in_flight_when_the_connection_closed_does_not_decide(
    autojump_clock: trio.testing.MockClock,
) -> None:
    d = directory()
    verified_peer(d, "p-leader", ep(2))
    in_flight = trio.current_time()
    await trio.sleep(0.5)
    d.connection_closed(ep(2)[0])
    d.ping_failed("p-leader", "connection to 127.0.0.2:8000 closed", sent=in_flight)
    assert d.healthy() == [ME, "p-leader"], "it failed because of the close: ask again"
    d.ping_failed("p-leader", "cannot connect to 127.0.0.2:8000", sent=trio.current_time())
    assert d.healthy() == [ME]


async def test_without_a_closed_connection_a_failed_ping_waits_for_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    d = directory()
    verified_peer(d, "p-silent", ep(2))
    d.ping_failed("p-silent", "no answer within 1s")
    assert d.healthy() == [ME, "p-silent"]
    await trio.sleep(TIMEOUT + 0.1)
    assert d.healthy() == [ME]


async def test_a_close_at_an_address_nobody_healthy_uses_wakes_nothing() -> None:
    d = directory()
    verified_peer(d, "p-a", ep(2))
    d.connection_closed(ep(9)[0])
    assert not d.recheck_due.is_set()


class FakeCaller:
    """Answers pings from a table: peer id -> answering or not; counts the calls."""

    def __init__(self, d: PeerDirectory) -> None:
        self.directory = d
        self.up: dict[str, bool] = {}
        self.calls: list[tuple[float, str]] = []

    async def call(self, peer_id: str, method: str, args: dict[str, Any], *, timeout: float = 5.0) -> Any:
        self.calls.append((trio.current_time(), peer_id))
        if not self.up.get(peer_id):
            raise PeerUnreachable(f"cannot connect to {peer_id}")
        return PingAnswer(peer_id=PeerId(peer_id), known={}).to_wire()


async def test_the_gossip_loop_pings_again_without_waiting_for_its_round(
    autojump_clock: trio.testing.MockClock,
) -> None:
    d = directory()
    verified_peer(d, "p-leader", ep(2))
    caller = FakeCaller(d)
    caller.up["p-leader"] = True
    async with trio.open_nursery() as nursery:
        # A long round: only a recheck can be this quick.
        await nursery.start(gossip_loop, d, cast(PeerCaller, caller), 5.0)
        await trio.sleep(1)
        caller.up["p-leader"] = False
        closed_at = trio.current_time()
        d.connection_closed(ep(2)[0])
        await d.changed.wait()
        assert trio.current_time() - closed_at < 0.01
        assert d.healthy() == [ME]
        nursery.cancel_scope.cancel()
