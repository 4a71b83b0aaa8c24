"""The soak's checks find what they are there to find: on made-up samples, each violation is
reported and the legitimate look-alikes are not."""

from __future__ import annotations

from soak_checker import (
    Member,
    NodeSample,
    Sample,
    StoreSample,
    availability,
    backup_gaps,
    healthy_removals,
    max_serving_clusters,
    planned_spans,
    token_claims,
    unsettled,
)
from writer import Ack

STORE = StoreSample(present=True, spec_count=3, spec_version="3.4.23", created=True)


def member(n: int) -> Member:
    return Member(f"id{n}", f"peer{n}", n, 4001, False)


def node(
    n: int,
    *,
    cluster: str | None = "c1",
    token: str | None = "t1",
    members: tuple[int, ...] = (1, 2, 3),
    healthy: bool = True,
    quarantined: str | None = None,
) -> NodeSample:
    listed = tuple(member(m) for m in members) if cluster else None
    return NodeSample(n, True, 100 + n, token, cluster, listed, healthy, "3.4.23", quarantined, 2)


def sample(at: float, *nodes: NodeSample, store: StoreSample = STORE) -> Sample:
    return Sample(at, nodes or tuple(node(n) for n in (1, 2, 3)), store)


def test_a_whole_cluster_is_settled_and_a_missing_member_is_not() -> None:
    assert unsettled(sample(0), 3, "3.4.23") is None
    short = sample(0, *(node(n, members=(1, 2)) for n in (1, 2)), node(3, healthy=False))
    assert unsettled(short, 3, "3.4.23") == "2 members, not 3"
    assert unsettled(sample(0), 3, "3.5.30") == "node 1 runs 3.4.23, not 3.5.30"


def test_two_clusters_serving_at_once_are_counted() -> None:
    split = sample(0, node(1), node(2), node(3, cluster="c2", token="t2"))
    assert max_serving_clusters([sample(0), split, sample(1)]) == 2


def test_a_token_is_claimed_by_the_created_marker_once_and_by_restore_claims() -> None:
    stores = [
        StoreSample(present=True, at=0.5, created=True),
        StoreSample(present=True, at=2.5, created=True, claims=("t2",)),  # a restore claims t2
    ]
    ok = [
        sample(0, node(1, cluster=None, token=None)),
        sample(1),  # t1 serves after the created marker was seen
        sample(3, *(node(n, cluster="c2", token="t2") for n in (1, 2, 3))),
    ]
    assert token_claims(ok, stores).unclaimed == []
    assert token_claims(ok, stores).tokens == ["t1", "t2"]
    rogue = [*ok, sample(4, *(node(n, cluster="c3", token="t3") for n in (1, 2, 3)))]
    assert token_claims(rogue, stores).unclaimed == ["t3"]
    late = [*stores, StoreSample(present=True, at=4.0, created=True, claims=("t2", "t4"))]
    racing = [*ok, sample(4, *(node(n, cluster="c4", token="t4") for n in (1, 2, 3)))]
    assert token_claims(racing, late).unclaimed == ["t4"], (
        "a claim first seen as its cluster serves came late"
    )


def test_a_healthy_member_removed_is_reported_unless_the_spec_shrank() -> None:
    before = sample(0)
    after = sample(1, node(1, members=(1, 2)), node(2, members=(1, 2)), node(3, cluster=None))
    removed = healthy_removals([before, after])
    assert [(r.member, r.node) for r in removed] == [("peer3", 3)]

    shrunk = StoreSample(present=True, spec_count=2, created=True)
    after_shrink = sample(
        1, node(1, members=(1, 2)), node(2, members=(1, 2)), node(3, cluster=None), store=shrunk
    )
    assert healthy_removals([before, after_shrink]) == []

    dead = sample(0, node(1), node(2), node(3, healthy=False))
    assert healthy_removals([dead, after]) == [], "an unhealthy member may be replaced"


def test_backups_must_come_while_a_healthy_quorum_serves() -> None:
    with_backup = StoreSample(present=True, created=True, backups=frozenset({"b1"}))
    away = StoreSample(present=False)
    steady = [sample(t, store=with_backup) for t in range(0, 100, 5)]
    gaps = backup_gaps(steady, 60)
    assert [(g.start, g.end) for g in gaps] == [(0, 95)]
    paused = [sample(t, store=with_backup if t < 50 or t > 55 else away) for t in range(0, 100, 5)]
    assert backup_gaps(paused, 60) == [], "no backup is due while the store is away"


def test_a_learner_that_never_starts_does_not_excuse_missing_backups() -> None:
    """Seed 8: one voting member served alone beside a learner stuck on a full disk, and no
    backup came for ten minutes; learners do not count towards the quorum."""
    stuck = (member(2), Member("id3", "", 3, None, True))
    store = StoreSample(present=True, created=True, backups=frozenset({"b1"}))
    lone = NodeSample(2, True, 102, "t1", "c1", stuck, True, "3.4.23", None, 2)
    samples = [
        sample(
            t, node(1, cluster=None, healthy=False), lone, node(3, cluster=None, healthy=False), store=store
        )
        for t in range(0, 100, 5)
    ]
    assert [(g.start, g.end) for g in backup_gaps(samples, 60)] == [(0, 95)]


def test_availability_counts_seconds_with_an_acknowledged_write_outside_planned_quarantine() -> None:
    acks = [Ack(f"k{i}", "v3", t / 10, i) for i, t in enumerate(list(range(0, 30)) + list(range(70, 100)))]
    plain = availability(acks, 0.0, 10.0, [])
    assert (plain.windows, plain.served) == (10, 6)
    assert plain.max_unavailable > 3.9 and plain.outages == [(2.9, 7.0)]
    planned = availability(acks, 0.0, 10.0, [(3.0, 7.0)])
    assert (planned.windows, planned.served, planned.planned) == (6, 6, 4.0)
    assert planned.max_unavailable < 0.2


def test_planned_spans_run_from_the_change_to_the_first_write_after_the_quarantine() -> None:
    samples = [sample(t) for t in (1, 2)] + [
        sample(t, *(node(n, cluster=None, quarantined="c2") for n in (1, 2, 3))) for t in (3, 4, 5)
    ]
    acks = [Ack("k1", "v3", 2.5, 1), Ack("k2", "v3", 6.5, 2)]
    assert planned_spans(samples, [(2.8, 6.0)], acks) == [(2.8, 6.5)]
    assert planned_spans(samples, [(1.0, 2.5)], acks) == [], "no quarantine seen: nothing planned"
