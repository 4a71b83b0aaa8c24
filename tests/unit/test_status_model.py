"""The documents of ours in the store round-trip, and what does not parse is refused by name."""

from __future__ import annotations

import json

import pytest

from etcdmgr.model.checks import DrillRecord, KeyspaceFigures, figure_differences
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import BackupName, ClusterToken, PeerId
from etcdmgr.model.status import BackupStatus, ClusterStatus, DrillStatus, Outcome, PeerStatus
from etcdmgr.model.values import EtcdVersion

FIGURES = KeyspaceFigures(revision=53, keys=49, hash=2678838530, compact_revision=10)
DRILL = DrillRecord(
    passed=True,
    reason="revision 53, 49 keys, hash 2678838530 match",
    node=PeerId("b"),
    time=1_700_000_100,
    seconds=4.25,
    etcd_version=EtcdVersion("3.5.16"),
    figures=FIGURES,
)
STATUS = ClusterStatus(
    time=1_700_000_000,
    leader=PeerId("a"),
    stale_after=30.0,
    spec=ClusterSpec(3, EtcdVersion("3.5.16")),
    action="Wait",
    reason="cluster is as specified",
    cluster_token=ClusterToken("tok"),
    peers=(
        PeerStatus(
            PeerId("a"),
            "127.0.0.1:8000",
            True,
            "voting",
            True,
            EtcdVersion("3.5.16"),
            False,
            ClusterToken("tok"),
        ),
        PeerStatus(PeerId("b"), "127.0.0.2:8000", False, "voting", False),
        PeerStatus(PeerId("c"), "127.0.0.3:8000", True, problem="cannot read its state"),
    ),
    problems=("one problem",),
    last_action=Outcome("TakeBackup", 1_699_999_000),
    backup=BackupStatus(
        BackupName("2023-11-14T22:13:20Z-000001"), 1_699_999_000, 1234, EtcdVersion("3.5.16")
    ),
    backup_failure=Outcome("TakeBackup", 1_699_999_500, "no healthy member to back up"),
    drill=DrillStatus(BackupName("2023-11-14T22:13:20Z-000001"), DRILL),
    certificates={"etcd-manager-ca": 2_000_000_000},
)


def test_status_round_trips() -> None:
    assert ClusterStatus.from_bytes(STATUS.to_bytes()) == STATUS


def test_content_leaves_the_time_out() -> None:
    later = ClusterStatus.from_json({**STATUS.to_json(), "time": STATUS.time + 60})
    assert later.content() == STATUS.content()
    assert later.to_bytes() != STATUS.to_bytes()


def test_drill_record_and_figures_round_trip() -> None:
    assert DrillRecord.from_bytes(DRILL.to_bytes()) == DRILL
    assert KeyspaceFigures.from_bytes(FIGURES.to_bytes()) == FIGURES
    assert KeyspaceFigures.from_json({"revision": 7}) == KeyspaceFigures(7)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": 2}, "format 2 is newer"),
        ({"leader": "../x"}, "field 'leader'"),
        ({"staleAfterSeconds": float("nan")}, "staleAfterSeconds"),
        ({"peers": [{"id": "a", "member": "boss"}]}, "field 'member'"),
        ({"decision": {"action": "Wait"}}, "field 'reason' is missing"),
        ({"certificates": {"ca": "soon"}}, "certificates"),
    ],
)
def test_bad_status_fields_are_refused_by_name(change: dict[str, object], message: str) -> None:
    doc = {**STATUS.to_json(), **change}
    with pytest.raises(InvalidData, match=message):
        ClusterStatus.from_bytes(json.dumps(doc).encode())


def test_not_json_is_refused() -> None:
    with pytest.raises(InvalidData, match="not JSON"):
        ClusterStatus.from_bytes(b"{half")


def test_figures_compare_what_was_recorded() -> None:
    assert figure_differences(FIGURES, FIGURES) == []
    assert figure_differences(KeyspaceFigures(53), KeyspaceFigures(53, 1, 2)) == []
    diffs = figure_differences(FIGURES, KeyspaceFigures(53, 48, 1))
    assert diffs == [
        "48 keys, the live member had 49",
        "hashkv at revision 53 is 1, the live member's was 2678838530",
    ]
    assert figure_differences(FIGURES, KeyspaceFigures(60, 49, 2678838530)) == [
        "revision is 60, the backup was taken at 53"
    ]
