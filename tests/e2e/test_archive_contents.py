"""What each machine's archive holds, read from the files (for the Pythons no emulator here runs,
see test_other_machine.py): for every Python it is built for, every native module is there
under that Python's ABI (or abi3) and that machine's name, and every compiled file is an ELF
object for that machine."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest
from pyz import DIST, build_info

PYTHONS = ["3.11", "3.12", "3.13", "3.14"]
ELF_MACHINE = {"x86_64": 62, "aarch64": 183}  # e_machine: EM_X86_64, EM_AARCH64


def archives(pyz: Path) -> dict[str, Path]:
    """Each built archive by the machine it is for."""
    found = {build_info(p)["arch"]: p for p in sorted(DIST.glob("etcdmgr*.pyz"))}
    assert found.get(build_info(pyz)["arch"]) == pyz
    return found


def elf_machine(data: bytes) -> int | None:
    """e_machine of a little-endian 64-bit ELF file, None for anything else."""
    if data[:6] != b"\x7fELF\x02\x01":
        return None
    machine: int = struct.unpack_from("<H", data, 18)[0]
    return machine


def module_files(names: list[str], module: str, python: str, arch: str) -> list[str]:
    stem = "site-packages/" + module.replace(".", "/")
    tag = python.replace(".", "")
    return [n for n in names if n in (f"{stem}.cpython-{tag}-{arch}-linux-gnu.so", f"{stem}.abi3.so")]


@pytest.mark.parametrize("arch", sorted(ELF_MACHINE))
def test_every_native_module_for_every_python(pyz: Path, arch: str) -> None:
    archive = archives(pyz).get(arch)
    assert archive is not None, f"no archive for {arch} in {DIST} (build_zipapp.py builds one per machine)"
    info = build_info(archive)
    assert (info["arch"], info["pythons"]) == (arch, PYTHONS)
    natives: dict[str, list[str]] = info["natives"]
    # The same compiled modules for every Python: none falls back to pure Python on one of them.
    assert {tuple(natives[p]) for p in PYTHONS} == {tuple(natives[PYTHONS[0]])}
    assert {"_cffi_backend", "cryptography.hazmat.bindings._rust", "msgpack._cmsgpack"} <= set(
        natives["3.11"]
    )
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        for python in PYTHONS:
            for module in natives[python]:
                files = module_files(names, module, python, arch)
                assert len(files) == 1, f"{module} for Python {python} on {arch}: {files}"
        compiled = [n for n in names if n.endswith(".so") or ".so." in n]
        assert compiled
        wrong = {n: elf_machine(z.read(n)) for n in compiled if elf_machine(z.read(n)) != ELF_MACHINE[arch]}
    assert wrong == {}, f"not {arch} ELF objects: {wrong}"


def test_the_machines_archives_hold_the_same_files(pyz: Path) -> None:
    found = archives(pyz)
    assert set(found) == set(ELF_MACHINE)

    def plain(arch: str) -> set[str]:
        with zipfile.ZipFile(found[arch]) as z:
            names = z.namelist()
        return {n.replace(f"-{arch}-linux-gnu.so", "-ARCH.so") for n in names if ".libs/" not in n}

    assert plain("x86_64") == plain("aarch64")
    assert build_info(found["x86_64"])["dependencies"] == build_info(found["aarch64"])["dependencies"]
