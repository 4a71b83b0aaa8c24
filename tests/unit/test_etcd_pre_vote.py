"""A member that was cut off must not depose a working leader when it is back: etcd's pre-vote
is on from 3.4 (where it is off by default) and left alone on 3.3 (which has no such flag)."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdmgr.etcd.launch import EtcdLaunch, build_env
from etcdmgr.etcd.versions import EtcdBinaries


def launch(version: str) -> EtcdLaunch:
    binaries = EtcdBinaries(version, Path("/bin/etcd"), Path("/bin/etcdctl"), None)
    url = ["http://127.0.0.1:2380"]
    return EtcdLaunch("a", binaries, Path("/data"), url, url, url, url, {"a": url}, "token")


@pytest.mark.parametrize(("version", "pre_vote"), [("3.3.25", None), ("3.4.23", "true"), ("3.5.30", "true")])
def test_pre_vote_is_on_where_etcd_has_it(version: str, pre_vote: str | None) -> None:
    assert build_env(launch(version), {}).get("ETCD_PRE_VOTE") == pre_vote


def test_an_operator_may_still_turn_it_off() -> None:
    assert build_env(launch("3.4.23"), {"ETCD_PRE_VOTE": "false"})["ETCD_PRE_VOTE"] == "false"
