"""Who may lead: the refusal rules and the candidacy's token, as pure functions."""

from __future__ import annotations

from etcdmgr.peer.election import Candidacy, Follower, refusal


def test_the_lowest_healthy_id_is_accepted() -> None:
    assert refusal("b", ["a", "b", "c"], "a", ["a", "b", "c"]) is None


def test_a_leader_this_node_cannot_reach_is_refused() -> None:
    # A certificate alone does not make a leader: this node must reach it by its own pings.
    assert refusal("b", ["b", "c"], "a", ["a", "b", "c"]) == "leader a is not a healthy peer here"


def test_a_lower_healthy_id_wins() -> None:
    assert "has a lower id" in (refusal("c", ["a", "b", "c"], "b", ["b", "c"]) or "")


def test_a_leader_blind_to_a_healthy_peer_is_refused() -> None:
    assert "does not see healthy peers c" in (refusal("b", ["a", "b", "c"], "a", ["a", "b"]) or "")


def test_candidacy_takes_a_fresh_token_per_term() -> None:
    me = Candidacy("a")
    first = me.update(["a", "b"])
    assert first is not None and me.update(["a", "b"]) is first
    assert me.update(["0", "a"]) is None
    second = me.update(["a"])
    assert second is not None and second.token != first.token


def test_follower_refuses_other_tokens() -> None:
    f = Follower()
    assert f.admit("a", "x", 1) == "no leader accepted yet"
    f.accept("a", "t1")
    assert f.admit("a", "t1", 1) is None
    assert "stale" in (f.admit("a", "t0", 2) or "")
