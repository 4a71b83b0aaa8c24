"""Failed etcd starts: the pause before the next try, the one line that names the failure, and
what GetInfo reports while they go on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from etcdmgr.node.restarts import BACKOFF_CAP, MAX_PROBLEM, Failures, error_line

NOW = datetime(2030, 1, 1, tzinfo=UTC)

ZAP = """\
{"level":"info","ts":"2030-01-01T00:00:00.100Z","caller":"embed/etcd.go:375","msg":"closed etcd server","name":"a"}
{"level":"warn","ts":"2030-01-01T00:00:00.101Z","caller":"etcdmain/etcd.go:146","msg":"failed to start etcd","error":"listen tcp 127.0.0.1:4001: bind: address already in use"}
{"level":"fatal","ts":"2030-01-01T00:00:00.102Z","caller":"etcdmain/etcd.go:204","msg":"discovery failed","error":"listen tcp 127.0.0.1:4001: bind: address already in use","stacktrace":"main.main"}
"""
CAPNSLOG = """\
2030-01-01 00:00:00.367129 I | etcdmain: setting maximum number of CPUs to 2
2030-01-01 00:00:00.367317 C | etcdmain: listen tcp 127.0.0.1:4001: bind: address already in use
"""


def test_the_pause_doubles_from_one_second_up_to_the_cap() -> None:
    failures, pauses = Failures(), []
    for _ in range(9):
        failures, _new = failures.failed("exit 1", "1: x", NOW)
        pauses.append(failures.pause())
    assert pauses == [1, 2, 4, 8, 16, 32, BACKOFF_CAP, BACKOFF_CAP, BACKOFF_CAP]
    assert Failures().pause() == 0


def test_each_distinct_failure_is_reported_once() -> None:
    failures, first = Failures().failed("exit 1", "1: bind: address already in use", NOW)
    failures, again = failures.failed("exit 1", "1: bind: address already in use", NOW + timedelta(seconds=1))
    failures, other = failures.failed(
        "exit 2", "2: member has already been bootstrapped", NOW + timedelta(seconds=3)
    )
    failures, back = failures.failed("exit 1", "1: bind: address already in use", NOW + timedelta(seconds=7))
    assert (first, again, other, back) == (True, False, True, True)
    assert failures.count == 4 and failures.first_at == NOW


def test_the_problem_says_how_often_since_when_and_the_last_failure() -> None:
    assert Failures().problem() is None, "no failure, no problem"
    failures, _ = Failures().failed("etcd exited with code 1 0.2s after it started: x", "1: x", NOW)
    failures, _ = failures.failed("etcd exited with code 1 0.1s after it started: bind", "1: bind", NOW)
    assert failures.problem() == (
        "etcd exited with code 1 0.1s after it started: bind "
        "(failed start 2 in a row since 2030-01-01T00:00:00Z; retried after at most 60s)"
    )
    long, _ = Failures().failed("x" * 5000, "1: x", NOW)
    problem = long.problem()
    assert problem is not None and len(problem) == MAX_PROBLEM and problem.endswith("...")


def test_the_error_line_is_etcds_last_error_without_time_stamps() -> None:
    assert error_line(ZAP) == "discovery failed: listen tcp 127.0.0.1:4001: bind: address already in use"
    assert error_line(CAPNSLOG) == "etcdmain: listen tcp 127.0.0.1:4001: bind: address already in use"
    assert error_line(
        "panic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain.main()\n"
    ) == ("panic: runtime error: index out of range")
    assert error_line("2030-01-01 00:00:01.5 something odd\n") == "something odd"
    assert error_line("") == "no output"
    # The same failure at another time is the same line: reported once.
    later = ZAP.replace("2030-01-01T00:00:00", "2030-01-01T00:05:00")
    assert error_line(later) == error_line(ZAP)
