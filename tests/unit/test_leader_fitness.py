"""Leadership follows progress, not only pings: the rule, pure, with numbers for the clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import trio
import trio.testing

from etcdmgr.cli import daemon_cmd
from etcdmgr.cli.goflags import parse
from etcdmgr.model import PeerEndpoint
from etcdmgr.model.ids import PeerId
from etcdmgr.peer.calls import PingAnswer, PingArgs
from etcdmgr.peer.directory import PeerDirectory, Source
from etcdmgr.peer.election import Candidacy, Silence, leader_of, refusal
from etcdmgr.peer.gossip import handle_ping
from etcdmgr.peer.progress import Progress

STALL = 60.0


def test_a_loop_without_progress_for_the_stall_timeout_is_unfit_and_says_why() -> None:
    p = Progress(STALL, last_ok=100.0)
    p.failed("backup store file:///s: store folder /s has gone away")
    assert p.unfit(160.0) is None, "a failed cycle or two is no stall"
    why = p.unfit(161.0)
    assert (
        why
        == "its control loop has made no progress for 61s: backup store file:///s: store folder /s has gone away"
    )


def test_after_a_stall_a_node_is_fit_again_only_once_it_made_progress_for_a_stall_timeout() -> None:
    p = Progress(STALL, last_ok=0.0)
    p.ok(100.0)  # the store answers again, 100 s after the last progress
    assert "fit to lead in 60s" in (p.unfit(100.0) or "")
    p.ok(130.0)
    assert p.unfit(159.0) is not None
    assert p.unfit(160.0) is None


def test_a_failure_without_a_stall_does_not_hold_a_node_back() -> None:
    p = Progress(STALL, last_ok=0.0)
    p.failed("one slow store call")
    p.ok(30.0)
    assert p.unfit(30.0) is None


def test_time_spent_acting_is_no_stall_but_failing_cycles_around_it_are() -> None:
    p = Progress(STALL, last_ok=0.0)
    p.start_action(10.0)
    assert p.unfit(500.0) is None, "a long restore is work"
    p.end_action(510.0)  # the action took 500 s and failed
    p.failed("restore failed")
    assert p.unfit(560.0) is None, "50 s of the stall timeout were used before the action"
    assert p.unfit(561.0) is not None


def test_a_node_without_a_store_is_never_fit() -> None:
    p = Progress(STALL, last_ok=0.0)
    p.broken = "no usable backup store (s3://x)"
    p.ok(1.0)
    assert p.unfit(1.0) == "no usable backup store (s3://x)"


def test_the_error_a_ping_carries_is_one_short_line() -> None:
    p = Progress(STALL, last_ok=0.0)
    p.failed("etcdctl said:\n" + "x" * 5000)
    assert p.error == "etcdctl said:"
    p.failed("y" * 5000)
    assert p.error is not None and len(p.error) == 300


def test_the_lowest_fit_id_leads_and_the_lowest_healthy_one_when_none_is_fit() -> None:
    assert leader_of(["a", "b", "c"], {"a": "stuck"}) == "b"
    assert leader_of(["a", "b", "c"], {"a": "stuck", "b": "stuck"}) == "c"
    # A fault every node shares (the store is down for all) must not leave the cluster leaderless.
    assert leader_of(["a", "b", "c"], {"a": "x", "b": "x", "c": "x"}) == "a"
    assert leader_of(["a", "b"]) == "a"


def test_followers_pass_over_an_unfit_leader_and_accept_the_next_id() -> None:
    unfit = {"a": "its control loop has made no progress for 61s"}
    assert refusal("c", ["a", "b", "c"], "a", ["a", "b", "c"], unfit) == (
        "leader a is not fit to lead: its control loop has made no progress for 61s"
    )
    assert refusal("c", ["a", "b", "c"], "b", ["a", "b", "c"], unfit) is None
    # The unfit node itself follows the next id too.
    assert refusal("a", ["a", "b", "c"], "b", ["a", "b", "c"], unfit) is None
    # Once it is fit again, the lower id wins as before.
    assert "a is healthy and has a lower id than b" in (
        refusal("c", ["a", "b", "c"], "b", ["a", "b", "c"]) or ""
    )


def test_a_stuck_leader_steps_down_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    me = Candidacy("a")
    assert me.update(["a", "b"]) is not None
    caplog.set_level("INFO")
    assert me.update(["a", "b"], {"a": "its control loop has made no progress for 61s: store gone"}) is None
    assert (
        "stepping down: this node is not fit to lead (its control loop has made no progress for 61s: "
        "store gone); peer b leads next"
    ) in caplog.text
    b = Candidacy("b")
    assert b.update(["a", "b"], {"a": "stuck"}) is not None
    assert "fit to lead among 2: taking leadership" in caplog.text


def test_when_no_peer_is_fit_the_lowest_leads_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    me = Candidacy("a")
    assert me.update(["a", "b"], {"a": "store down", "b": "store down"}) is not None
    assert "no healthy peer is fit to lead; taking leadership as the lowest id among 2" in caplog.text


def test_a_follower_warns_once_per_silence_and_once_when_a_leader_returns() -> None:
    s = Silence(STALL, since=0.0)
    assert s.check(None, 60.0) is None
    assert s.check(None, 61.0) is True
    assert [s.check(None, t) for t in (70.0, 500.0)] == [None, None], "one warning per episode"
    assert s.check(505.0, 506.0) is False
    assert s.check(505.0, 540.0) is None
    assert s.check(505.0, 566.0) is True, "a second episode warns again"


def test_silence_counts_from_when_this_node_stopped_leading() -> None:
    s = Silence(STALL, since=0.0)
    s.since = 1000.0  # it led until then
    assert s.check(5.0, 1059.0) is None
    assert s.check(5.0, 1061.0) is True


def test_fitness_travels_in_ping_answers_and_the_first_releases_map_is_kept_while_fit() -> None:
    fit = PingAnswer(peer_id="a")
    assert fit.to_wire() == {"peerId": "a", "known": {}}
    unfit = PingAnswer(peer_id="a", unfit="store gone")
    assert PingAnswer.from_wire(unfit.to_wire()) == unfit
    assert PingAnswer.from_wire({"peerId": "a", "known": {}}).unfit is None, "an earlier release: fit"


async def test_the_directory_lists_healthy_peers_that_said_they_are_unfit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    d = PeerDirectory("m", (PeerEndpoint("127.0.0.1", 8000),), 4.0, progress=Progress(STALL, last_ok=0.0))
    b = (PeerEndpoint("127.0.0.2", 8000),)
    d.learn("b", b, Source.DISCOVERY)
    d.ping_ok("b", b, "its control loop has made no progress for 61s")
    assert d.unfit() == {"b": "its control loop has made no progress for 61s"}
    d.ping_ok("b", b)
    assert d.unfit() == {}
    d.ping_ok("b", b, "stuck")
    await trio.sleep(5.0)
    assert d.unfit() == {}, "an unhealthy peer is passed over anyway"

    d.progress.broken = "no usable backup store (s3://x)"
    answer = handle_ping(d, PeerId("b"), PingArgs(endpoints=b))
    assert answer.unfit == "no usable backup store (s3://x)"
    assert d.unfit() == {"m": "no usable backup store (s3://x)"}


def test_the_stall_timeout_flag_defaults_to_a_minute_and_refuses_less_than_two_cycles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [
        "--cluster-name=test",
        f"--backup-store=file://{tmp_path}/store",
        f"--data-dir={tmp_path}/data",
        "--insecure",
        "--etcd-insecure",
    ]
    config = daemon_cmd.config_from_args(parse(daemon_cmd.USAGE, "daemon", base), {})
    assert config.leader_stall_timeout == timedelta(seconds=60)
    assert daemon_cmd.main([*base, "--leader-stall-timeout=15s"]) == 2
    err = capsys.readouterr().err
    assert "--leader-stall-timeout must be at least twice --cycle-interval and --store-timeout" in err
    assert not (tmp_path / "data").exists()
