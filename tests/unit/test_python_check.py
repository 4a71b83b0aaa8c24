"""An interpreter that cannot run etcdmgr gets one line saying which Python it needs and how to
get it; the entry files parse on every older Python found here, so that line is what they see."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pyz import pythons

from etcdmgr.python_check import problem

ROOT = Path(__file__).resolve().parents[2]
ENTRY_FILES = ("etcdmgr.py", "etcdmgr/__main__.py", "etcdmgr/__init__.py", "etcdmgr/python_check.py")
OLD_PYTHONS = {v: p for v, p in pythons().items() if tuple(map(int, v.split("."))) < (3, 11)}
SUPPORTED = ("3.11", "3.12", "3.13", "3.14")


def check(version: tuple[int, ...], implementation: str = "CPython", machine: str = "x86_64") -> str | None:
    return problem(version, implementation, machine, "/usr/bin/python3", SUPPORTED, "x86_64")


def test_a_supported_python_passes() -> None:
    assert check((3, 11, 2)) is None
    assert check((3, 14, 0)) is None
    assert problem((3, 15, 0), "CPython", "aarch64", "python3") is None  # the source tree: 3.11 up


@pytest.mark.parametrize("version", [(2, 7, 18), (3, 6, 15), (3, 8, 18), (3, 10, 13)])
def test_an_old_python_is_told_what_to_install(version: tuple[int, ...]) -> None:
    line = check(version)
    assert line is not None and "\n" not in line
    assert line.startswith("etcdmgr needs CPython 3.11 to 3.14; this is CPython ")
    assert "(/usr/bin/python3)" in line
    assert "install python3.11 or newer" in line


def test_another_implementation_is_refused() -> None:
    line = check((3, 11, 0), implementation="PyPy")
    assert line is not None and "needs CPython 3.11 to 3.14; this is PyPy 3.11.0" in line


def test_a_newer_python_than_the_archive_holds_is_told_which_to_use() -> None:
    line = check((3, 15, 0))
    assert line is not None
    assert "native modules for CPython 3.11 to 3.14 only" in line
    assert "run it with python3.14" in line
    assert "--python-version 3.15" in line


def test_a_free_threaded_build_is_told_to_use_the_standard_one() -> None:
    line = problem((3, 14, 0), "CPython", "x86_64", "/usr/bin/python3.14t", SUPPORTED, "x86_64", "t")
    assert line is not None and "a build with ABI flags 't' (free-threaded or debug)" in line
    assert line.endswith("run it with the standard python3.14.")
    assert problem((3, 14, 0), "CPython", "x86_64", "python3", abiflags="t") is None  # the source tree


def test_the_other_machine_is_told_to_use_its_own_build() -> None:
    line = check((3, 12, 0), machine="aarch64")
    assert (
        line == "this etcdmgr.pyz is built for x86_64 Linux and this host is aarch64: use the aarch64 build."
    )


@pytest.mark.skipif(not OLD_PYTHONS, reason="no Python older than 3.11 on this machine")
@pytest.mark.parametrize("version", sorted(OLD_PYTHONS))
def test_entry_files_parse_and_refuse_on_an_old_python(version: str) -> None:
    python = str(OLD_PYTHONS[version])
    for name in ENTRY_FILES:
        compiled = subprocess.run(
            [python, "-c", "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')", name],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert compiled.returncode == 0, f"{name} does not parse on Python {version}: {compiled.stderr}"
    for cmd in (["etcdmgr.py", "version"], ["-m", "etcdmgr", "version"]):
        done = subprocess.run([python, *cmd], cwd=ROOT, capture_output=True, text=True, check=False)
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.startswith("etcdmgr needs CPython 3.11 or newer; this is CPython " + version)
        assert done.stderr.count("\n") == 1
