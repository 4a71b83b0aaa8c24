"""The peer directory's trust rules and bounds: gossip is a hint, only our own ping verifies."""

from __future__ import annotations

import base64
import os
import time

import trio
import trio.testing

from etcdmgr.model import PeerEndpoint
from etcdmgr.model.ids import PeerId
from etcdmgr.peer.calls import PingArgs
from etcdmgr.peer.codec import MAX_FRAME, Request, Response, encode_request, encode_response
from etcdmgr.peer.directory import HINT_RETRY_MAX, MAX_RECORDS, PRUNE_AFTER, PeerDirectory, Source
from etcdmgr.peer.gossip import handle_ping
from etcdmgr.peer.methods import PING

ME = "m-me"
TIMEOUT = 4.0
MINE = (PeerEndpoint("127.0.0.1", 8000),)


def ep(n: int, port: int = 8000) -> tuple[PeerEndpoint, ...]:
    return (PeerEndpoint(f"127.0.0.{n}", port),)


def directory() -> PeerDirectory:
    return PeerDirectory(ME, MINE, TIMEOUT)


def verified_peer(d: PeerDirectory, peer_id: str, endpoints: tuple[PeerEndpoint, ...]) -> None:
    d.learn(peer_id, endpoints, Source.DISCOVERY)
    d.ping_ok(peer_id, endpoints)


def random_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


async def test_a_gossiped_id_is_a_hint_until_our_own_ping_answers() -> None:
    d = directory()
    d.learn("a-hint", ep(2), Source.GOSSIP)
    assert "a-hint" in d.records
    assert d.healthy() == [ME], "not healthy, so never leader"
    assert "a-hint" not in d.verified(), "not shared, not in the hosts file"
    assert d.due() == ["a-hint"]

    d.ping_ok("a-hint", ep(2))
    assert d.healthy() == ["a-hint", ME]
    assert d.verified()["a-hint"] == ep(2)


async def test_gossip_never_moves_a_record_and_a_verified_one_stays_where_it_answers() -> None:
    d = directory()
    verified_peer(d, "p-real", ep(2))
    for source in Source:
        d.learn("p-real", ep(66), source)
    assert d.endpoints_of("p-real") == ep(2), "healthy where we verified it: nothing moves it"

    d.learn("h-hint", ep(3), Source.GOSSIP)
    d.learn("h-hint", ep(66), Source.GOSSIP)
    assert d.endpoints_of("h-hint") == ep(3), "first hint kept: a third party changes nothing"


async def test_a_verified_peer_that_stopped_answering_moves_only_on_first_hand_word(
    autojump_clock: trio.testing.MockClock,
) -> None:
    d = directory()
    verified_peer(d, "p-moved", ep(2))
    await trio.sleep(TIMEOUT + 1)
    assert d.healthy() == [ME]
    d.learn("p-moved", ep(66), Source.GOSSIP)
    assert d.endpoints_of("p-moved") == ep(2), "a third party never moves a verified id"

    d.learn("p-moved", ep(5), Source.PEER)  # its own ping from its new address
    assert d.endpoints_of("p-moved") == ep(5)
    assert "p-moved" not in d.verified(), "the new address must answer our ping first"
    d.learn("p-moved", ep(2), Source.DISCOVERY)
    assert d.endpoints_of("p-moved") == ep(5), "discovery does not override the peer's own word"

    d.ping_ok("p-moved", ep(2))
    assert "p-moved" not in d.verified(), "an answer at endpoints it no longer has proves nothing"
    d.ping_ok("p-moved", ep(5))
    assert d.verified()["p-moved"] == ep(5)


async def test_first_hand_word_moves_a_hint() -> None:
    d = directory()
    d.learn("h-x", ep(66), Source.GOSSIP)
    d.learn("h-x", ep(3), Source.DISCOVERY)
    assert d.endpoints_of("h-x") == ep(3)


async def test_invalid_ids_and_endpoints_and_our_own_address_are_ignored() -> None:
    d = directory()
    # What a ping carries is parsed at the boundary (peer/calls.py): bad entries never arrive.
    known = {bad: [{"ip": "127.0.0.2", "port": 8000}] for bad in BAD_IDS}
    known["no-ip"] = [{"ip": "evil.example", "port": 8000}]
    known["bad-port"] = [{"ip": "127.0.0.2", "port": 0}]
    handle_ping(
        d, PeerId("former-me"), PingArgs.from_wire({"endpoints": [MINE[0].to_json()], "known": known})
    )
    d.learn(PeerId(ME), ep(2), Source.PEER)
    assert d.records == {}
    for good in ("-Ab3xYz9Q", "_x0-abcd", "etcd-a", "a.b"):
        d.learn(PeerId(good), ep(2), Source.GOSSIP)
    assert set(d.records) == {"-Ab3xYz9Q", "_x0-abcd", "etcd-a", "a.b"}


async def test_the_directory_is_capped_and_hints_never_displace_first_hand_peers() -> None:
    d = directory()
    verified_peer(d, "p-real", ep(2))
    for i in range(MAX_RECORDS + 50):
        d.learn(f"h-{i:04d}", ep(3, 10000 + i), Source.GOSSIP)
    assert len(d.records) == MAX_RECORDS
    assert "p-real" in d.records

    d.learn("p-new", ep(4), Source.PEER)  # a peer speaking for itself displaces the oldest hint
    assert len(d.records) == MAX_RECORDS
    assert "p-new" in d.records and "h-0000" not in d.records and "p-real" in d.records


async def test_a_full_directory_of_verified_peers_refuses_newcomers() -> None:
    d = directory()
    for i in range(MAX_RECORDS):
        verified_peer(d, f"p-{i:04d}", ep(2, 10000 + i))
    d.learn("p-late", ep(3), Source.PEER)
    assert "p-late" not in d.records and len(d.records) == MAX_RECORDS


async def test_records_unheard_for_a_while_are_pruned(autojump_clock: trio.testing.MockClock) -> None:
    d = directory()
    verified_peer(d, "p-listed", ep(2))
    verified_peer(d, "p-gone", ep(3))
    d.learn("h-hint", ep(4), Source.GOSSIP)
    for _ in range(PRUNE_AFTER + 1):
        await trio.sleep(TIMEOUT)
        d.learn("p-listed", ep(2), Source.DISCOVERY)  # still in discovery: first-hand enough
        d.learn("h-hint", ep(4), Source.GOSSIP)  # repeated hearsay keeps nothing alive
        d.prune()
    assert set(d.records) == {"p-listed"}
    assert set(d.verified()) == {ME, "p-listed"}


async def test_a_host_back_under_a_new_id_replaces_its_old_self_once_it_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    d = directory()
    verified_peer(d, "p-old", ep(2))
    verified_peer(d, "p-other", ep(3))
    await trio.sleep(TIMEOUT + 1)
    d.ping_ok("p-other", ep(3))
    d.learn("p-new", ep(2), Source.GOSSIP)
    d.learn("p-squatter", ep(3), Source.GOSSIP)
    assert "p-old" in d.records, "a hint replaces nothing"

    d.ping_ok("p-new", ep(2))
    d.ping_ok("p-squatter", ep(3))
    assert "p-old" not in d.records, "its address answers under the new id"
    assert "p-other" in d.records, "a healthy peer is never replaced"


async def test_a_silent_hint_is_pinged_ever_less_often(autojump_clock: trio.testing.MockClock) -> None:
    d = directory()
    verified_peer(d, "p-real", ep(2))
    d.learn("h-dead", ep(3), Source.GOSSIP)
    pinged = 0
    for _ in range(120):
        if "h-dead" in d.due():
            pinged += 1
            d.ping_failed("h-dead", "connection refused")
        assert "p-real" in d.due(), "verified peers are pinged every round"
        await trio.sleep(1)
    assert 5 <= pinged <= 10, pinged  # 1, 2, 4, 8, 16, 30, 30 ... seconds apart
    assert HINT_RETRY_MAX == 30.0

    d.learn("h-dead", ep(3), Source.PEER)  # it speaks for itself: ping it at once
    assert "h-dead" in d.due()


BAD_IDS = ("", ".", "..", "../x", "/etc", "a/b", "a b", "x\n127.0.0.1 evil", "é", "a" * 129)


def poisoned_ping(n: int) -> Request:
    known = {random_id(): [{"ip": f"127.66.{(k >> 8) & 255}.{k & 255}", "port": 1}] for k in range(n)}
    known["api.github.com"] = [{"ip": "127.66.66.66", "port": 1}]
    args = {"endpoints": [{"ip": "127.0.0.7", "port": 8000}], "known": known}
    return Request(1, PING, "test", "z-attacker", args)


async def test_a_ping_carrying_75000_ids_is_handled_fast_and_changes_nothing_that_matters() -> None:
    d = directory()
    verified_peer(d, "p-real", ep(2))
    request = poisoned_ping(75_000)
    assert len(encode_request(request)) <= MAX_FRAME, "it fits in one frame, so a daemon would read it"

    start = time.perf_counter()
    answer = handle_ping(d, PeerId(request.sender), PingArgs.from_wire(request.args)).to_wire()
    elapsed = time.perf_counter() - start

    assert elapsed < 0.1, f"{elapsed * 1000:.1f} ms"
    assert "z-attacker" in d.records, "the handler ran: the caller is known (not verified)"
    assert len(d.records) == MAX_RECORDS
    assert set(d.verified()) == {ME, "p-real"}, "no hint reaches the hosts file"
    assert d.healthy() == [ME, "p-real"]
    assert set(answer["known"]) == {ME, "p-real"}
    assert len(encode_response(Response.success(1, answer))) < 1000
    # Our own next ping still encodes small, so the peers keep seeing us.
    again = handle_ping(
        d, PeerId("p-real"), PingArgs.from_wire({"endpoints": [ep(2)[0].to_json()], "known": answer["known"]})
    )
    assert set(again.known) == {ME, "p-real"}
