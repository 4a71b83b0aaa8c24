#!/usr/bin/env python3
"""Build the one-file executables: dist/etcdmgr.pyz, and the air-gapped bundles.

Usage: python3 build_zipapp.py [--arch ARCH]... [--python-version X.Y]... [--python SHEBANG]
                               [--dist DIR] [--force] [--bundle [--etcd-version V]...]

One archive per machine (x86_64, aarch64): dist/etcdmgr.pyz is this host's, the others are
dist/etcdmgr-<arch>.pyz. Each runs on every CPython of PYTHONS on glibc 2.28 or newer: the
runtime dependencies are installed from wheels once per (Python, machine) with pip's
--python-version/--platform, all pinned to the versions resolved for the first, and merged
into one site-packages. Compiled modules carry their ABI in their file names
(`_cffi_backend.cpython-312-x86_64-linux-gnu.so`, `_rust.abi3.so`), so the versions sit side by
side and the interpreter picks its own; any other file that differs between two targets stops
the build, since then one site-packages cannot serve both. build.json at the archive's top level
names the commit, the date, the Pythons and, per Python, the native modules `etcdmgr version`
checks.

The archive's start-up (etcdmgr/python_check.py, then etcdmgr/unpack.py) refuses an unusable
interpreter in one line and unpacks site-packages once per build into a private folder.

Installed dependencies are cached under build/ (keyed by the dependency list and the wheel
platforms), so a rebuild after an edit of etcdmgr/ only repacks, in seconds; an archive newer
than every input and built from the same commit is not rebuilt at all (--force rebuilds).

--bundle also writes dist/etcdmgr-<version>-linux-<goarch>.tar.gz per machine: the archive,
the etcd versions asked for (fetched by scripts/install-etcd), SHA256SUMS and install.sh.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from etcdmgr import __version__
from etcdmgr.unpack import BUILD_INFO, SITE

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / "build"
DEPS_CACHE = BUILD / "zipapp-deps"
DIST = ROOT / "dist"
PACKAGE = "etcdmgr"
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
ARCHES = ("x86_64", "aarch64")
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
HOST_ARCH = platform.machine()
# Wheels for manylinux_2_17 .. manylinux_2_28: the archives run on glibc 2.28 and newer.
GLIBC_MINORS = range(28, 16, -1)
DEFAULT_SHEBANG = "/usr/bin/env python3"
# The archive's top level: its start-up modules, copied from the package under private names.
START_MODULES = {"_etcdmgr_python_check.py": "python_check.py", "_etcdmgr_unpack.py": "unpack.py"}
MAIN_PY = """\
# etcdmgr.pyz start-up (written by build_zipapp.py); parses on any Python.
import _etcdmgr_python_check
_etcdmgr_python_check.require({pythons!r}, {arch!r})
import _etcdmgr_unpack
_etcdmgr_unpack.main()
"""
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # entry dates fixed: the same inputs give the same bytes
INSTALL_ETCD = ROOT / "scripts" / "install-etcd"
INSTALL_SH = ROOT / "scripts" / "bundle-install.sh"


def log(message: str) -> None:
    print(f"build_zipapp: {message}", flush=True)


def run(cmd: Sequence[str | Path], env: dict[str, str] | None = None) -> None:
    subprocess.run([str(c) for c in cmd], check=True, env=env)


@dataclass(frozen=True)
class Target:
    python: str  # "3.12"
    arch: str  # "x86_64"

    @property
    def name(self) -> str:
        return f"cp{self.python.replace('.', '')}-{self.arch}"


REFERENCE = Target(PYTHONS[0], ARCHES[0])  # every other target gets the versions resolved here


def platforms(arch: str) -> list[str]:
    return [f"manylinux_2_{minor}_{arch}" for minor in GLIBC_MINORS] + [f"manylinux2014_{arch}"]


def output_path(dist: Path, arch: str) -> Path:
    return dist / ("etcdmgr.pyz" if arch == HOST_ARCH else f"etcdmgr-{arch}.pyz")


# --- inputs, commit, up to date -------------------------------------------------------------


def inputs() -> Iterator[Path]:
    """Every path whose change must cause a rebuild; folders too, so a deleted file counts."""
    yield ROOT / "pyproject.toml"
    yield Path(__file__).resolve()
    for folder, dirs, files in os.walk(ROOT / PACKAGE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        yield Path(folder)
        for name in files:
            if not name.endswith((".pyc", ".pyo")):
                yield Path(folder, name)


def commit() -> str:
    """HEAD's short hash, with "+changes" when the packed files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", PACKAGE, "pyproject.toml", Path(__file__).name],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+changes" if changed else head


def read_build_info(archive: Path) -> dict[str, object] | None:
    try:
        with zipfile.ZipFile(archive) as z:
            info: dict[str, object] = json.loads(z.read(BUILD_INFO))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return None
    return info


def up_to_date(output: Path, shebang: str, pythons: Sequence[str], built_from: str) -> bool:
    try:
        built = output.stat().st_mtime
        with output.open("rb") as f:
            first_line = f.readline()
    except FileNotFoundError:
        return False
    info = read_build_info(output)
    if first_line != f"#!{shebang}\n".encode() or info is None:
        return False
    if info.get("commit") != built_from or info.get("pythons") != list(pythons):
        return False
    try:
        return all(p.stat().st_mtime < built for p in inputs())
    except FileNotFoundError:  # removed while we looked: something changed
        return False


# --- dependencies: one pip install per (Python, machine), pinned alike -----------------------


def runtime_deps() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        deps: list[str] = tomllib.load(f)["project"]["dependencies"]
    return deps


def deps_root() -> Path:
    """The cache folder of this dependency list; older lists' folders are dropped."""
    deps: list[str] = runtime_deps()
    key = hashlib.sha256(json.dumps([deps, platforms("ARCH"), REFERENCE.name]).encode()).hexdigest()[:16]
    folder = DEPS_CACHE / key
    if not folder.exists():
        shutil.rmtree(DEPS_CACHE, ignore_errors=True)
        folder.mkdir(parents=True)
    return folder


def install_target(target: Target, dest: Path, pins: Path | None) -> None:
    log(f"installing runtime dependencies for CPython {target.python} on {target.arch}")
    staging = dest.with_name(f"{dest.name}.partial")  # a half-done install never takes the name
    shutil.rmtree(staging, ignore_errors=True)
    try:
        run([
            sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
            "--root-user-action=ignore",
            "--target", staging, "--only-binary=:all:", "--implementation", "cp",
            "--python-version", target.python, *(f"--platform={p}" for p in platforms(target.arch)),
            *(["--constraint", str(pins)] if pins else []), *runtime_deps(),
        ])  # fmt: skip
    except subprocess.CalledProcessError:
        raise SystemExit(
            f"build_zipapp: no wheels for CPython {target.python} on {target.arch} (glibc 2.28) "
            f"of the versions pinned in {pins} (see pip's message above)"
        ) from None
    shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts: not used from the archive
    staging.rename(dest)


def pinned_versions(site: Path) -> dict[str, str]:
    return {d.metadata["Name"]: d.version for d in importlib.metadata.distributions(path=[str(site)])}


def installed_targets(targets: Sequence[Target], force: bool) -> dict[Target, Path]:
    """Each target's installed dependencies, installing those not cached yet."""
    root = deps_root()
    if force:
        shutil.rmtree(root)
        root.mkdir(parents=True)
    reference = root / REFERENCE.name
    if not reference.exists():
        install_target(REFERENCE, reference, None)
    pins = root / "pins.txt"
    if not pins.exists():
        versions = pinned_versions(reference)
        pins.write_text("".join(f"{name}=={v}\n" for name, v in sorted(versions.items())))
    out = {}
    for target in targets:
        out[target] = root / target.name
        if not out[target].exists():
            install_target(target, out[target], pins)
    return out


# --- one site-packages for every Python ------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    source: Path
    digest: str
    target: Target


def files_of(folder: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path.relative_to(folder).as_posix(), path


def merged_site(installed: dict[Target, Path]) -> dict[str, Entry]:
    """site-packages path -> file: the union of every target's, which must agree file by file.

    Metadata differs per wheel (WHEEL names the tag, RECORD the files): the first one is kept.
    """
    merged: dict[str, Entry] = {}
    for target, folder in installed.items():
        for rel, path in files_of(folder):
            entry = Entry(path, hashlib.sha256(path.read_bytes()).hexdigest(), target)
            first = merged.setdefault(rel, entry)
            if first.digest != entry.digest and not rel.split("/")[0].endswith(".dist-info"):
                raise SystemExit(
                    f"build_zipapp: {rel} differs between {first.target.name} and {target.name}; "
                    "one site-packages cannot hold both (a compiled module without its ABI in its name?)"
                )
    for rel, path in files_of(ROOT / PACKAGE):
        merged[f"{PACKAGE}/{rel}"] = Entry(path, hashlib.sha256(path.read_bytes()).hexdigest(), REFERENCE)
    return merged


def native_modules(folder: Path) -> list[str]:
    """Dotted names of the compiled modules under folder (not the vendored libraries)."""
    names = []
    for path in folder.rglob("*.so"):
        *packages, filename = path.relative_to(folder).parts
        module = filename.split(".")[0]
        if all(part.isidentifier() for part in (*packages, module)):
            names.append(".".join((*packages, module)))
    return sorted(names)


# --- the archive ------------------------------------------------------------------------------


def zip_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | mode) << 16
    return info


def write_archive(
    output: Path,
    shebang: str,
    site: dict[str, Entry],
    info: dict[str, object],
    pythons: Sequence[str],
    arch: str,
) -> None:
    # Written beside the output and renamed, so a running test never sees half a file.
    partial = output.with_name(f".{output.name}.partial")
    with partial.open("wb") as f:
        f.write(f"#!{shebang}\n".encode())
        with zipfile.ZipFile(f, "w") as z:
            for rel in sorted(site):
                entry = site[rel]
                z.writestr(
                    zip_entry(f"{SITE}/{rel}", stat.S_IMODE(entry.source.stat().st_mode)),
                    entry.source.read_bytes(),
                )
            for name, module in START_MODULES.items():
                z.writestr(zip_entry(name, 0o644), (ROOT / PACKAGE / module).read_bytes())
            z.writestr(zip_entry(BUILD_INFO, 0o644), json.dumps(info, indent=1) + "\n")
            main_py = MAIN_PY.format(pythons=tuple(pythons), arch=arch)
            z.writestr(zip_entry("__main__.py", 0o644), main_py)
    partial.chmod(0o755)
    partial.replace(output)


def build(
    output: Path, arch: str, pythons: Sequence[str], shebang: str, built_from: str, force: bool
) -> None:
    started = time.monotonic()
    installed = installed_targets([Target(py, arch) for py in pythons], force)
    site = merged_site(installed)
    build_id = hashlib.sha256("".join(f"{rel}\0{e.digest}\n" for rel, e in sorted(site.items())).encode())
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
    info: dict[str, object] = {
        "name": PACKAGE,
        "version": __version__,
        "commit": built_from,
        "built_at": datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "build_id": build_id.hexdigest()[:24],
        "arch": arch,
        "pythons": list(pythons),
        "natives": {t.python: native_modules(folder) for t, folder in installed.items()},
        "dependencies": dict(sorted(pinned_versions(installed[Target(pythons[0], arch)]).items())),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    write_archive(output, shebang, site, info, pythons, arch)
    log(f"built {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output} "
        f"in {time.monotonic() - started:.1f} s")  # fmt: skip


# --- the air-gapped bundle --------------------------------------------------------------------


def etcd_prefix(arch: str) -> Path:
    """Where install-etcd keeps this machine's etcd: its usual place for the host, build/ else."""
    if arch == HOST_ARCH:
        return Path(os.environ.get("ETCD_PREFIX", "/opt"))
    return BUILD / f"etcd-{GO_ARCH[arch]}"


def add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = len(data), mode, int(time.time())
    tar.addfile(member, io.BytesIO(data))


def bundle(pyz: Path, arch: str, etcd_versions: Sequence[str], dist: Path) -> Path:
    goarch = GO_ARCH[arch]
    prefix = etcd_prefix(arch)
    run([INSTALL_ETCD, *etcd_versions], env={**os.environ, "ETCD_PREFIX": str(prefix), "ETCD_ARCH": goarch})
    top = f"etcdmgr-{__version__}-linux-{goarch}"
    files: dict[str, tuple[bytes, int]] = {"etcdmgr.pyz": (pyz.read_bytes(), 0o755)}
    for version in etcd_versions:
        folder = f"etcd-v{version}-linux-{goarch}"
        for binary in sorted((prefix / folder).iterdir()):
            files[f"opt/{folder}/{binary.name}"] = (binary.read_bytes(), 0o755)
    sums = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, (data, _) in sorted(files.items())
    )
    files["SHA256SUMS"] = (sums.encode(), 0o644)
    files["install.sh"] = (INSTALL_SH.read_text().replace("@ARCH@", arch).encode(), 0o755)
    output = dist / f"{top}.tar.gz"
    partial = output.with_name(f".{output.name}.partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        for name, (data, mode) in files.items():
            add_file(tar, f"{top}/{name}", data, mode)
    partial.replace(output)
    log(f"bundle {output} ({output.stat().st_size / 1e6:.1f} MB): etcd {', '.join(etcd_versions)}")
    return output


# --- command line -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the one-file etcdmgr executables (and bundles).")
    parser.add_argument("--arch", action="append", choices=ARCHES, help="default: all of them")
    parser.add_argument("--python-version", action="append", help=f"default: {', '.join(PYTHONS)}")
    parser.add_argument("--python", default=DEFAULT_SHEBANG, help="shebang (default: %(default)s)")
    parser.add_argument("--dist", type=Path, default=DIST, help="output folder (default: dist/)")
    parser.add_argument("--force", action="store_true", help="reinstall the dependencies and rebuild")
    parser.add_argument("--bundle", action="store_true", help="also write the air-gapped tarballs")
    parser.add_argument(
        "--etcd-version", action="append", help="etcd versions in the bundles (default: all obtainable)"
    )
    args = parser.parse_args(argv)
    arches: list[str] = args.arch or list(ARCHES)
    pythons = sorted(set(args.python_version or PYTHONS), key=lambda v: tuple(map(int, v.split("."))))
    dist: Path = args.dist.resolve()
    built_from = commit()
    for arch in arches:
        output = output_path(dist, arch)
        if not args.force and up_to_date(output, args.python, pythons, built_from):
            log(f"up to date: {output}")
        else:
            build(output, arch, pythons, args.python, built_from, args.force)
        print(f"{output} {output.stat().st_size / 1e6:.1f} MB")
    if args.bundle:
        etcd_versions = args.etcd_version or all_etcd_versions()
        for arch in arches:
            bundle(output_path(dist, arch), arch, etcd_versions, dist)
    return 0


def all_etcd_versions() -> list[str]:
    """The versions scripts/install-etcd can fetch (its --list)."""
    out = subprocess.run([INSTALL_ETCD, "--list"], capture_output=True, text=True, check=True).stdout
    return out.split()


if __name__ == "__main__":
    raise SystemExit(main())
