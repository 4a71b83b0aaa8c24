"""Fencing below the token: each mutating call of a term is numbered and used once."""

from __future__ import annotations

from etcdmgr.peer.election import Follower, Term


def following(leader: str = "a", token: str = "t1") -> Follower:
    f = Follower()
    f.accept(leader, token)
    return f


def test_calls_of_the_term_are_accepted_in_order_and_each_only_once() -> None:
    f = following()
    assert f.admit("a", "t1", 1) is None
    assert f.admit("a", "t1", 3) is None  # numbers taken by calls to other nodes leave gaps
    assert "late or again" in (f.admit("a", "t1", 3) or "")
    assert "late or again" in (f.admit("a", "t1", 2) or "")


def test_a_call_that_timed_out_is_refused_when_it_arrives_late() -> None:
    leader, f = Term("t1"), following()
    late = leader.take()  # sent, then the partition held it past the caller's deadline
    leader.give_up(late)
    f.accept("a", leader.token, leader.floor)  # the next cycle's notification
    assert "late or again" in (f.admit("a", "t1", late) or "")
    assert f.admit("a", "t1", leader.take()) is None


def test_a_new_term_starts_its_numbers_afresh_and_the_old_token_is_refused() -> None:
    f = following(token="t1")
    assert f.admit("a", "t1", 7) is None
    f.accept("a", "t2")
    assert f.admit("a", "t2", 1) is None
    assert "stale" in (f.admit("a", "t1", 8) or "")


def test_only_the_accepted_leader_may_change_anything() -> None:
    f = Follower()
    assert f.admit("a", "t1", 1) == "no leader accepted yet"
    f.accept("a", "t1")
    assert "stale" in (f.admit("b", "t1", 1) or "")


def test_a_leader_of_the_previous_release_cannot_change_anything_until_upgraded() -> None:
    assert "earlier etcdmgr release" in (following().admit("a", "t1", None) or "")


def test_the_floor_never_moves_back() -> None:
    f = following()
    f.accept("a", "t1", 5)
    f.accept("a", "t1", 2)
    assert f.admit("a", "t1", 4) is not None
