"""Version lookup and the pure version rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etcdmgr.etcd.versions import (
    ARCH,
    all_binaries,
    find_binaries,
    has_v2_api,
    in_place_upgrade_ok,
    installed_versions,
    resolve_version,
    supports_learners,
)

INSTALLED = ["3.5.30", "3.3.25", "3.4.23", "3.5.0", "3.5.16", "3.5.1"]


@pytest.mark.parametrize(
    ("requested", "installed", "expected", "reason_has"),
    [
        ("3.4.23", INSTALLED, "3.4.23", "is installed"),
        ("v3.4.23", INSTALLED, "3.4.23", "is installed"),
        ("3.4.13", INSTALLED, "3.4.23", "newest installed 3.4.x"),
        ("3.5.9", INSTALLED, "3.5.30", "using 3.5.30"),
        ("3.5.0", INSTALLED, "3.5.0", "is installed"),
        ("3.3.10", INSTALLED, "3.3.25", "3.3.x"),
        ("3.6.0", INSTALLED, None, "installed versions: 3.3.25, 3.4.23, 3.5.0, 3.5.1, 3.5.16, 3.5.30"),
        ("3.2.24", INSTALLED, None, "nor any 3.2.x"),
        ("2.2.1", INSTALLED, None, "2.2.1 is not installed"),
        ("3.4.23", [], None, "installed versions: none"),
        ("latest", INSTALLED, None, "not of the form X.Y.Z"),
        ("3.4", INSTALLED, None, "not of the form X.Y.Z"),
    ],
)
def test_resolve_version(requested: str, installed: list[str], expected: str | None, reason_has: str) -> None:
    got, reason = resolve_version(requested, installed)
    assert got == expected
    assert reason_has in reason


@pytest.mark.parametrize(
    ("version", "v2", "learners"),
    [("3.3.25", True, False), ("3.4.0", True, True), ("3.5.30", True, True), ("3.6.0", False, True)],
)
def test_version_features(version: str, v2: bool, learners: bool) -> None:
    assert has_v2_api(version) is v2
    assert supports_learners(version) is learners


@pytest.mark.parametrize(
    ("a", "b", "ok"),
    [
        ("3.5.0", "3.5.30", True),
        ("3.5.30", "3.5.0", True),  # patch downgrade: same data format
        ("3.5.1", "3.5.1", True),
        ("3.4.23", "3.5.0", True),
        ("3.3.25", "3.4.23", True),
        ("3.3.25", "3.5.30", False),  # skips a minor
        ("3.5.0", "3.4.23", False),  # etcd refuses minor downgrades
        ("2.3.8", "3.0.0", False),
    ],
)
def test_in_place_upgrade_ok(a: str, b: str, ok: bool) -> None:
    assert in_place_upgrade_ok(a, b) is ok


def _fake(directory: Path, *, utl: bool = False, version_out: str | None = None) -> None:
    directory.mkdir(parents=True)
    names = ["etcd", "etcdctl", *(["etcdutl"] if utl else [])]
    for name in names:
        path = directory / name
        path.write_text(f"#!/bin/sh\necho 'etcd Version: {version_out}'\n" if version_out else "")
        os.chmod(path, 0o755)


def test_lookup_layouts(tmp_path: Path) -> None:
    opt, extra = tmp_path / "opt", tmp_path / "extra"
    _fake(opt / f"etcd-v3.4.23-linux-{ARCH}")
    _fake(opt / "etcd-v3.5.1", utl=True)
    _fake(opt / "etcd-v3.5.16-linux-otherarch")  # another architecture: ignored
    _fake(opt / "etcd-v3.5.17-linux-amd64.tar.gz-unpacked")  # not the naming convention
    (opt / "etcd-v3.3.25").mkdir()  # no binaries inside
    _fake(extra, version_out="3.6.2")  # binaries directly in the dir: version asked from etcd
    _fake(tmp_path / "dup" / "etcd-v3.4.23")

    assert installed_versions([opt]) == ["3.4.23", "3.5.1"]
    assert installed_versions([extra, opt]) == ["3.4.23", "3.5.1", "3.6.2"]
    found = all_binaries([extra, opt, tmp_path / "dup", tmp_path / "missing"])
    assert found["3.6.2"].etcd == extra / "etcd"
    assert found["3.5.1"].etcdutl == opt / "etcd-v3.5.1" / "etcdutl"
    assert found["3.4.23"].etcdutl is None
    assert found["3.4.23"].etcd.parent == opt / f"etcd-v3.4.23-linux-{ARCH}"  # first dir wins
    assert find_binaries("v3.5.1", [opt]) == found["3.5.1"]
    assert find_binaries("3.5.2", [opt]) is None
