"""Start-up of the one-file archive: unpack its site-packages once, then run etcdmgr.

build_zipapp.py copies this module to the archive's top level (as `_etcdmgr_unpack`); the
archive's `__main__` runs it after python_check accepted the interpreter. Compiled modules
cannot load from inside a zip, so the archive's `site-packages/` is unpacked, once per build
(and compiled once per Python version), into the first folder that is usable:

1. `$SHIV_ROOT` when set (made if missing; no fallback: the operator chose it);
2. `~/.shiv`;
3. `$XDG_RUNTIME_DIR/etcdmgr`, then `/run/user/<uid>/etcdmgr`;
4. `$TMPDIR/etcdmgr-<uid>` (else `/tmp/etcdmgr-<uid>`).

Code is run from there, so a folder is used only when it is a folder of our own that nobody
else can write (owner = our uid, no group or other write bit); the shared ones (3, 4) are made
0700 and must not be links. A hardened unit (read-only or missing home) thus falls through to
the runtime or temp folder; when nothing is usable the answer is one line, never a traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shutil
import stat
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

BUILD_INFO = "build.json"  # at the archive's top level: version, commit, date, build id, natives
SITE = "site-packages"


class UnpackError(Exception):
    """Why the archive cannot be unpacked: one line for the user."""


@dataclass(frozen=True)
class Candidate:
    path: Path
    explicit: bool  # $SHIV_ROOT: made with its parents, links followed, never skipped
    shared_parent: bool  # under a folder others may use: refuse links


def _passwd_home(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_dir
    except KeyError:
        return None


RUN_USER = Path("/run/user")  # systemd's per-user runtime folders, when XDG_RUNTIME_DIR is unset


def candidates(env: Mapping[str, str], uid: int, run_user: Path = RUN_USER) -> Iterator[Candidate]:
    """The folders to unpack into, in order of preference (see the module's doc)."""
    if env.get("SHIV_ROOT"):
        yield Candidate(Path(env["SHIV_ROOT"]).expanduser(), explicit=True, shared_parent=False)
        return
    home = env.get("HOME") or _passwd_home(uid)
    if home:
        yield Candidate(Path(home, ".shiv"), explicit=False, shared_parent=False)
    for runtime in (env.get("XDG_RUNTIME_DIR"), run_user / str(uid)):
        if runtime:
            yield Candidate(Path(runtime, "etcdmgr"), explicit=False, shared_parent=True)
    yield Candidate(Path(env.get("TMPDIR") or "/tmp", f"etcdmgr-{uid}"), explicit=False, shared_parent=True)


def unusable(candidate: Candidate, uid: int) -> str | None:
    """Why this folder may not hold code we run (made 0700 if missing), or None when it may."""
    path = candidate.path
    try:
        path.mkdir(mode=0o700, parents=candidate.explicit, exist_ok=True)
        st = os.lstat(path) if candidate.shared_parent else os.stat(path)
    except OSError as e:
        return e.strerror or str(e)
    if stat.S_ISLNK(st.st_mode):
        return "a link, not a folder"
    if not stat.S_ISDIR(st.st_mode):
        return "not a folder"
    if st.st_uid != uid:
        return f"owned by uid {st.st_uid}, not by uid {uid}"
    if st.st_mode & 0o022:
        return f"others can write it (mode {stat.S_IMODE(st.st_mode):04o})"
    if not os.access(path, os.W_OK | os.X_OK):
        return "not writable"
    return None


def choose_root(env: Mapping[str, str], uid: int, run_user: Path = RUN_USER) -> Path:
    """The first usable candidate; UnpackError names each refusal when there is none."""
    refused = []
    for candidate in candidates(env, uid, run_user):
        why = unusable(candidate, uid)
        if why is None:
            return candidate.path
        refused.append(f"{candidate.path}: {why}")
    hint = "set SHIV_ROOT to a folder of this user's that others cannot write"
    raise UnpackError(f"no folder to unpack into ({'; '.join(refused)}): {hint}")


def _extract(archive: zipfile.ZipFile, partial: Path) -> None:
    for info in archive.infolist():
        if info.filename.startswith(f"{SITE}/"):
            extracted = archive.extract(info, partial)
            if mode := stat.S_IMODE(info.external_attr >> 16):
                os.chmod(extracted, mode)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # several daemons may start at once
        yield
    finally:
        os.close(fd)


def unpack(archive: zipfile.ZipFile, root: Path, build_id: str) -> Path:
    """root/etcdmgr_<build id>/site-packages, unpacked and compiled for this Python under a lock
    unless already done.

    Compiled explicitly, once per Python version: with PYTHONDONTWRITEBYTECODE (common in
    containers) every start would compile every module again.
    """
    target = root / f"etcdmgr_{build_id}"
    site = target / SITE
    compiled = target / f".compiled-{sys.implementation.cache_tag}"
    if compiled.exists():
        return site
    with _locked(root / f".etcdmgr_{build_id}.lock"):
        if not site.is_dir():
            # Unpacked beside and renamed, so a crash never leaves a half tree under the real name.
            partial = root / f".etcdmgr_{build_id}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(target, ignore_errors=True)
            _extract(archive, partial)
            partial.rename(target)
        if not compiled.exists():
            import compileall  # only here: its import alone is a tenth of a warm start

            # One worker: a process pool would run this archive's main again in each process.
            compileall.compile_dir(site, quiet=2, workers=1)
            compiled.touch()
    return site


def site_packages(archive_path: Path, env: Mapping[str, str], uid: int) -> Path:
    """The unpacked site-packages of this archive, unpacking it first when needed."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            build_id = str(json.loads(archive.read(BUILD_INFO))["build_id"])
            root = choose_root(env, uid)
            try:
                return unpack(archive, root, build_id)
            except OSError as e:
                raise UnpackError(f"cannot unpack into {root}: {e.strerror or e}") from None
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise UnpackError(f"cannot read the archive {archive_path}: {e}") from None


def first_site_index() -> int:
    """Where our folder goes on sys.path: before any installed site-packages, after the stdlib."""
    for i, entry in enumerate(sys.path):
        if Path(entry).name in ("site-packages", "dist-packages"):
            return i
    return len(sys.path)


def main() -> NoReturn:
    try:
        site = site_packages(Path(sys.argv[0]), os.environ, os.geteuid())
    except UnpackError as e:
        print(f"etcdmgr: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    sys.path.insert(first_site_index(), str(site))
    from etcdmgr.cli.main import main as etcdmgr_main

    raise SystemExit(etcdmgr_main())
