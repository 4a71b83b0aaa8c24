"""`etcdmgr version`: version, build, Python, etcd found; exit 1 when a native module fails."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from etcdmgr import __version__
from etcdmgr.cli.version_cmd import main, report

INFO: dict[str, Any] = {
    "commit": "0123456789ab",
    "built_at": "2026-11-28T10:00:00Z",
    "arch": "x86_64",
    "pythons": ["3.11", "3.12"],
    "natives": {"3.11": ["json", "_socket"], "3.12": ["json"]},
}


def fake_etcd(folder: Path, *versions: str) -> None:
    for v in versions:
        sub = folder / f"etcd-v{v}-linux-amd64"
        sub.mkdir(parents=True)
        for name in ("etcd", "etcdctl"):
            (sub / name).write_text("")


def test_from_an_archive(tmp_path: Path) -> None:
    fake_etcd(tmp_path, "3.5.16", "3.4.23")
    lines, failures = report(INFO, "3.11", [tmp_path], importlib.import_module)
    assert failures == []
    assert lines[0] == f"etcdmgr {__version__}"
    assert (
        lines[1] == "build: commit 0123456789ab, 2026-11-28T10:00:00Z, for CPython 3.11, 3.12 on x86_64 Linux"
    )
    assert lines[2].startswith("python: CPython ")
    assert lines[3] == f"etcd: 3.4.23, 3.5.16 in {tmp_path}"
    assert lines[4] == "native modules: _socket, json: all load"


def test_a_native_module_that_cannot_load_is_a_failure(tmp_path: Path) -> None:
    info = {**INFO, "natives": {"3.11": ["json", "no_such_native_module"]}}
    lines, failures = report(info, "3.11", [tmp_path], importlib.import_module)
    assert lines[-1] == "native modules: json, no_such_native_module: cannot all load"
    assert failures == ["no_such_native_module: ModuleNotFoundError: No module named 'no_such_native_module'"]


def test_from_the_source_tree(tmp_path: Path) -> None:
    lines, failures = report(None, "3.11", [tmp_path], importlib.import_module)
    assert lines[1] == "build: none (run from the source tree)"
    assert lines[3] == f"etcd: none (looked in {tmp_path})"
    assert len(lines) == 4 and failures == []


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_etcd(tmp_path / "a", "3.3.25", "3.4.23")
    fake_etcd(tmp_path / "b", "3.4.23", "3.5.0")
    assert main([f"--etcd-bin-dir={tmp_path / 'a'},{tmp_path / 'b'}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"etcdmgr {__version__}\n")
    assert f"etcd: 3.3.25, 3.4.23 in {tmp_path / 'a'}; 3.5.0 in {tmp_path / 'b'}" in out
    assert main(["--no-such-flag"]) == 2
