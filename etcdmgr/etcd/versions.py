"""Installed etcd versions: where the binaries live and which version serves a requested one.

The documented layout is `/opt/etcd-v<version>-linux-<arch>/{etcd,etcdctl[,etcdutl]}` (also
`/opt/etcd-v<version>/`). Extra directories (the daemon's `--etcd-bin-dir`) may hold such
`etcd-v<version>...` subdirectories, or the binaries directly; in the latter case the version is
asked from `etcd --version`. Earlier directories win when two hold the same version.
"""

from __future__ import annotations

import functools
import logging
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from etcdmgr.etcd.errors import EtcdBinaryMissing
from etcdmgr.model.cluster import parse_version
from etcdmgr.model.errors import InvalidData

log = logging.getLogger(__name__)

DEFAULT_BIN_DIRS: tuple[Path, ...] = (Path("/opt"),)

_GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
ARCH = _GO_ARCH.get(platform.machine().lower(), platform.machine().lower())

_SUBDIR_RE = re.compile(rf"^etcd-v(\d+\.\d+\.\d+)(?:-linux-{re.escape(ARCH)})?$")
_VERSION_OUT_RE = re.compile(r"etcd Version:\s*(\d+\.\d+\.\d+)")
_PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class EtcdBinaries:
    version: str
    etcd: Path
    etcdctl: Path
    etcdutl: Path | None  # only 3.5 and later ship it


# The newest minor etcdmgr is tested with; etcd-manager's own default is 3.6 by now.
NEWEST_TESTED = (3, 5)


def version_key(version: str) -> tuple[int, int, int]:
    return parse_version(version)


def untested(version: str) -> str | None:
    """Why `version` is untested (a minor newer than the newest tested), or None."""
    major, minor, _ = version_key(version)
    if (major, minor) <= NEWEST_TESTED:
        return None
    return f"etcd {major}.{minor} is untested with etcdmgr (tested: 3.3 to {NEWEST_TESTED[0]}.{NEWEST_TESTED[1]})"


def untested_refusal(version: str, *, installed_said: bool = False) -> str | None:
    """The one line that refuses an untested `version` that is not installed, or None;
    `installed_said` leaves out what the line it is added to has said."""
    why = untested(version)
    if why is None:
        return None
    major, minor, _ = version_key(version)
    return (
        f"{why}{'' if installed_said else ' and not installed'}: install etcd {major}.{minor}.x "
        f"binaries on every host to run it anyway, or ask for {NEWEST_TESTED[0]}.{NEWEST_TESTED[1]}.x"
    )


def _binaries_in(directory: Path, version: str) -> EtcdBinaries | None:
    etcd, etcdctl, etcdutl = directory / "etcd", directory / "etcdctl", directory / "etcdutl"
    if not (etcd.is_file() and etcdctl.is_file()):
        return None
    return EtcdBinaries(version, etcd, etcdctl, etcdutl if etcdutl.is_file() else None)


@functools.lru_cache(maxsize=64)
def _probe_version(etcd: Path, mtime_ns: int, size: int) -> str | None:
    """`etcd --version` of one binary; cached per (path, mtime, size) since it forks a process."""
    del mtime_ns, size  # only part of the cache key
    try:
        out = subprocess.run(
            [str(etcd), "--version"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _VERSION_OUT_RE.search(out)
    return m.group(1) if m else None


def _scan(directory: Path) -> list[EtcdBinaries]:
    found: list[EtcdBinaries] = []
    etcd = directory / "etcd"
    if etcd.is_file():
        st = etcd.stat()
        version = _probe_version(etcd, st.st_mtime_ns, st.st_size)
        if version and (b := _binaries_in(directory, version)):
            found.append(b)
    try:
        children = sorted(directory.iterdir())
    except OSError:
        return found
    for child in children:
        m = _SUBDIR_RE.match(child.name)
        if m and child.is_dir() and (b := _binaries_in(child, m.group(1))):
            found.append(b)
    return found


def all_binaries(bin_dirs: Iterable[Path] = DEFAULT_BIN_DIRS) -> dict[str, EtcdBinaries]:
    """Every installed version -> its binaries; the first directory holding a version wins."""
    out: dict[str, EtcdBinaries] = {}
    for directory in bin_dirs:
        for b in _scan(Path(directory)):
            out.setdefault(b.version, b)
    return out


async def installed_binaries(bin_dirs: Iterable[Path] = DEFAULT_BIN_DIRS) -> dict[str, EtcdBinaries]:
    """all_binaries in a worker thread: it scans folders and may run `etcd --version`."""
    import trio  # here: `ctl configure-cluster` uses this module without an event loop

    return await trio.to_thread.run_sync(all_binaries, tuple(bin_dirs))


def installed_versions(bin_dirs: Iterable[Path] = DEFAULT_BIN_DIRS) -> list[str]:
    """Installed versions, oldest first."""
    return sorted(all_binaries(bin_dirs), key=version_key)


def find_binaries(version: str, bin_dirs: Iterable[Path] = DEFAULT_BIN_DIRS) -> EtcdBinaries | None:
    """The binaries of exactly this version, or None."""
    return all_binaries(bin_dirs).get(version.lstrip("v"))


def resolve_version(requested: str, installed: Sequence[str]) -> tuple[str | None, str]:
    """Which installed version serves `requested`, and why (a sentence for logs and errors).

    Exact match first, else the newest installed patch release of the same major.minor, since
    patch releases of etcd share the data format. None when neither exists.
    """
    try:
        want = parse_version(requested)
    except InvalidData as e:
        return None, str(e)
    ordered = sorted(installed, key=version_key)
    shown = ", ".join(ordered) if ordered else "none"
    exact = f"{want[0]}.{want[1]}.{want[2]}"
    if exact in ordered:
        return exact, f"etcd {exact} is installed"
    series = f"{want[0]}.{want[1]}.x"
    same_minor = [v for v in ordered if version_key(v)[:2] == want[:2]]
    if same_minor:
        best = same_minor[-1]
        return (
            best,
            f"etcd {exact} is not installed; using {best}, the newest installed {want[0]}.{want[1]}.x",
        )
    why = f"etcd {exact} is not installed, nor any {series}; installed versions: {shown}"
    if refusal := untested_refusal(exact, installed_said=True):
        why += f"; {refusal}"
    return None, why


def pick_binaries(
    installed: Mapping[str, EtcdBinaries], version: str | None = None, *, any_version: bool = False
) -> EtcdBinaries:
    """The binaries that serve `version` (see resolve_version). With `any_version` (etcdctl and
    etcdutl work with any 3.x member or snapshot) the newest installed ones when none serves it
    or no version is given. Raises EtcdBinaryMissing; logs a substitute version."""
    why = "no etcd version asked for"
    if version:
        chosen, why = resolve_version(version, list(installed))
        if chosen is not None:
            if chosen != version:
                log.info("%s", why)
            if not any_version and (note := untested(chosen)):
                log.warning("%s: running it, as its binaries are installed", note)
            return installed[chosen]
    if not any_version:
        raise EtcdBinaryMissing(why)
    if not installed:
        raise EtcdBinaryMissing("no etcd binaries installed (looked for etcd-v<VERSION>*/ directories)")
    newest = installed[max(installed, key=version_key)]
    if version:
        log.info("%s; using the newest installed, %s", why, newest.version)
    return newest


def has_v2_api(version: str) -> bool:
    """etcd up to 3.5 can serve the v2 keyspace (with --enable-v2); 3.6 removed it."""
    return version_key(version) < (3, 6, 0)


def supports_learners(version: str) -> bool:
    """Learner members (`member add --learner`, `member promote`) exist from 3.4."""
    return version_key(version) >= (3, 4, 0)


def in_place_upgrade_ok(from_version: str, to_version: str) -> bool:
    """Can a member restart on `to_version` over the data dir of `from_version`?

    Yes for a patch change (either way) or one minor step up within 3.x; etcd refuses a minor
    downgrade ("cluster cannot be downgraded") and skipping a minor is unsupported.
    """
    a, b = version_key(from_version), version_key(to_version)
    if a[:2] == b[:2]:
        return True
    return a[0] == b[0] == 3 and b[1] == a[1] + 1
