"""A bad value from a peer, the store or the queue makes the leader wait and say why, never raise."""

from __future__ import annotations

import logging

import pytest

from etcdmgr.controller import actions as a
from etcdmgr.controller import plan as planner
from etcdmgr.controller.facts import Facts
from etcdmgr.controller.plan import COULD_NOT_DECIDE, plan
from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.model import ClusterSpec, PeerInfo
from etcdmgr.model.command import Command, RestoreBackup
from unit.test_plan import V, member, node, peer, view

RUNNING = [peer(p, member=True) for p in ("peer-a", "peer-b", "peer-c")]
MEMBERS = [member(p) for p in ("peer-a", "peer-b", "peer-c")]
NAME = "2026-01-01T00:00:00Z-000000"


def waits(v: ClusterView, *words: str) -> str:
    d = plan(v)
    assert d.action == a.Wait(), d
    assert COULD_NOT_DECIDE not in d.reason, d.reason  # handled by a rule, not by the last resort
    for word in words:
        assert word in d.reason, d.reason
    return d.reason


@pytest.mark.parametrize("version", ["", "garbage", "3.4", "3.4.23.1", "3.4.x"])
def test_a_running_version_that_is_not_xyz_waits(version: str) -> None:
    peers = [*RUNNING[:2], peer("peer-c", member=True, version=version)]
    waits(view(3, peers=peers, members=MEMBERS), "peer-c", "X.Y.Z")


@pytest.mark.parametrize("created", [False, True])
def test_a_garbage_installed_version_waits(created: bool) -> None:
    peers = [peer("peer-a"), peer("peer-b"), peer("peer-c", installed=("garbage",))]
    waits(view(3, created=created, peers=peers, members=None), "peer-c", "'garbage'")


def test_installed_versions_that_are_not_a_list_wait() -> None:
    odd = PeerInfo("peer-c", "test", node("peer-c"), None, installed_versions=5)  # type: ignore[arg-type]
    waits(view(3, created=False, peers=[peer("peer-a"), peer("peer-b"), odd]), "peer-c", "not a list")


def test_a_huge_value_is_cut_short_in_the_reason() -> None:
    peers = [peer("peer-a", installed=("9" * 100_000,))]
    assert len(waits(view(1, created=False, peers=peers), "peer-a")) < 200


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (ClusterSpec(0, V), "member count"),
        (ClusterSpec(-3, V), "member count"),
        (ClusterSpec(3, ""), "X.Y.Z"),
        (ClusterSpec(3, "garbage"), "X.Y.Z"),
        (ClusterSpec(3, "2.3.7"), "not supported"),
    ],
)
def test_a_spec_no_daemon_can_carry_out_waits(spec: ClusterSpec, why: str) -> None:
    for created, members in ((False, None), (True, tuple(MEMBERS))):
        v = ClusterView(spec=spec, created=created, peers={p.peer_id: p for p in RUNNING}, members=members)
        waits(v, "cluster spec cannot be used", why)


@pytest.mark.parametrize(
    ("restore", "why"),
    [
        (RestoreBackup(ClusterSpec(0, ""), "b1"), "member count"),
        (RestoreBackup(ClusterSpec(-3, V), "b1"), "member count"),
        (RestoreBackup(ClusterSpec(3, "garbage"), "b1"), "X.Y.Z"),
        (RestoreBackup(ClusterSpec(3, V), ""), "names no backup"),
    ],
)
def test_a_restore_command_that_cannot_be_carried_out_waits(restore: RestoreBackup, why: str) -> None:
    cmd = Command(NAME, 1, restore)
    waits(view(3, peers=RUNNING, members=MEMBERS, commands=(cmd,)), why, f"delete-command {NAME}")


def test_a_command_that_is_not_a_restore_at_the_head_of_the_queue_waits() -> None:
    first = Command(NAME, 1, None)
    then = Command("2026-01-01T00:00:01Z-000000", 2, RestoreBackup(ClusterSpec(3, V), "b1"))
    waits(view(3, peers=RUNNING, members=MEMBERS, commands=(first, then)), f"delete-command {NAME}")


def test_two_members_of_one_name_wait() -> None:
    twin = MemberView(9999, "peer-c", ("http://127.0.0.9:2380",), (), healthy=False)
    waits(view(3, peers=RUNNING, members=[*MEMBERS, twin]), "more than one member named peer-c")


def test_a_member_no_peer_answers_for_is_a_dead_host_not_an_error() -> None:
    members = [*MEMBERS[:2], member("peer-z", healthy=False, unhealthy_for=3600)]
    waits(view(3, peers=RUNNING[:2], members=members), "unhealthy: peer-z")


def test_a_rule_that_raises_makes_the_leader_wait_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def exploding(f: Facts) -> a.Decision | None:
        """Always fails."""
        raise RuntimeError("boom")

    monkeypatch.setattr(planner, "RULES", (planner.RULES[0], exploding, *planner.RULES[1:]))
    with caplog.at_level(logging.ERROR, logger=planner.__name__):
        d = plan(view(3, peers=RUNNING, members=MEMBERS))
    assert d.action == a.Wait()
    assert d.reason == f"{COULD_NOT_DECIDE}: exploding: RuntimeError: boom"
    assert "exploding" in caplog.text and "Traceback" in caplog.text


def test_a_view_that_cannot_be_read_makes_the_leader_wait() -> None:
    broken = ClusterView(spec=ClusterSpec(3, V), created=True, peers=None, members=None)  # type: ignore[arg-type]
    d = plan(broken)
    assert d.action == a.Wait() and d.reason.startswith(f"{COULD_NOT_DECIDE}: reading the view: ")
