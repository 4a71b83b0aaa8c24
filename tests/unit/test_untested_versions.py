"""etcd 3.6 (etcd-manager's default) is untested here: refused in one line while its binaries are
missing, run and marked untested in the log once they are installed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from etcdmgr.cli import ctl_cmd
from etcdmgr.controller.facts import runnable
from etcdmgr.etcd.errors import EtcdBinaryMissing
from etcdmgr.etcd.versions import ARCH, EtcdBinaries, pick_binaries, resolve_version
from etcdmgr.model import ClusterSpec, PeerInfo

REFUSAL = (
    "etcd 3.6 is untested with etcdmgr (tested: 3.3 to 3.5): install etcd 3.6.x binaries on every "
    "host to run it anyway, or ask for 3.5.x"
)


def installed(*versions: str) -> dict[str, EtcdBinaries]:
    return {v: EtcdBinaries(v, Path(f"/e/{v}/etcd"), Path(f"/e/{v}/etcdctl"), None) for v in versions}


def test_a_missing_36_is_refused_with_one_line_that_says_why() -> None:
    chosen, why = resolve_version("3.6.11", ["3.4.23", "3.5.30"])
    assert chosen is None
    assert (
        why == f"etcd 3.6.11 is not installed, nor any 3.6.x; installed versions: 3.4.23, 3.5.30; {REFUSAL}"
    )
    with pytest.raises(EtcdBinaryMissing, match="untested"):
        pick_binaries(installed("3.5.30"), "3.6.11")


def test_a_missing_tested_version_says_nothing_of_testing() -> None:
    assert "untested" not in resolve_version("3.4.1", ["3.5.30"])[1]


def test_an_installed_36_runs_and_is_marked_untested(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert pick_binaries(installed("3.5.30", "3.6.11"), "3.6.11").version == "3.6.11"
        assert pick_binaries(installed("3.5.30", "3.6.11"), "3.5.30").version == "3.5.30"
    assert [r.getMessage() for r in caplog.records] == [
        "etcd 3.6 is untested with etcdmgr (tested: 3.3 to 3.5): running it, as its binaries are installed"
    ]


def test_the_leader_says_why_no_peer_can_run_it() -> None:
    peer = PeerInfo.from_wire(
        {"peerId": "a", "clusterName": "c", "node": {"name": "a"}, "installedVersions": ["3.5.30"]}
    )
    able, note = runnable(ClusterSpec(1, "3.6.11"), {"a": peer})
    assert able == [] and note.endswith(REFUSAL)


def test_ctl_refuses_a_36_spec_unless_its_binaries_are_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"--backup-store=file://{tmp_path / 'store'}"
    bin_dir = tmp_path / "bin"
    args = [
        store,
        "--member-count=3",
        "--etcd-version=3.6.11",
        f"--etcd-bin-dir={bin_dir}",
        "configure-cluster",
    ]
    assert ctl_cmd.main(args) == 1
    err = capsys.readouterr().err
    assert err.strip().endswith("etcd 3.6.11 refused: " + REFUSAL.replace("):", ") and not installed:"))
    assert not (tmp_path / "store" / "control" / "etcd-cluster-spec").exists()

    release = bin_dir / f"etcd-v3.6.11-linux-{ARCH}"
    release.mkdir(parents=True)
    for tool in ("etcd", "etcdctl", "etcdutl"):
        (release / tool).touch()
    assert ctl_cmd.main(args) == 0
    assert "warning: etcd 3.6 is untested with etcdmgr" in capsys.readouterr().err
