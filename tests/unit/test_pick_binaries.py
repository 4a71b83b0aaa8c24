"""One rule picks the etcd binaries for a version, for the daemon and the offline tools alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdmgr.etcd.errors import EtcdBinaryMissing
from etcdmgr.etcd.versions import EtcdBinaries, pick_binaries


def installed(*versions: str) -> dict[str, EtcdBinaries]:
    return {v: EtcdBinaries(v, Path(f"/e/{v}/etcd"), Path(f"/e/{v}/etcdctl"), None) for v in versions}


INSTALLED = installed("3.4.23", "3.5.16", "3.5.30")


@pytest.mark.parametrize(
    ("version", "any_version", "expected"),
    [
        ("3.5.16", False, "3.5.16"),  # exact
        ("3.5.9", False, "3.5.30"),  # the newest patch of the same minor
        ("3.4.1", True, "3.4.23"),
        ("3.3.25", True, "3.5.30"),  # a tool: no 3.3.x, the newest etcdctl speaks to any 3.x
        (None, True, "3.5.30"),
        ("", True, "3.5.30"),
    ],
)
def test_the_version_picked(version: str | None, any_version: bool, expected: str) -> None:
    assert pick_binaries(INSTALLED, version, any_version=any_version).version == expected


def test_a_member_needs_its_minor_installed() -> None:
    with pytest.raises(EtcdBinaryMissing, match=r"nor any 3\.3\.x; installed versions: 3\.4\.23, 3\.5\.16"):
        pick_binaries(INSTALLED, "3.3.25")


def test_nothing_installed() -> None:
    with pytest.raises(EtcdBinaryMissing, match="no etcd binaries installed"):
        pick_binaries({}, "3.5.30", any_version=True)
    with pytest.raises(EtcdBinaryMissing, match=r"3\.5\.30 is not installed"):
        pick_binaries({}, "3.5.30")
