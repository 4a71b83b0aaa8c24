"""A restore drill: restore a backup into a throw-away etcd and check that it holds what the live
member held when the backup was taken (etcdmgr.model.checks says which figures, and why).

Bounded so that it never hurts the etcd member beside it: the restore and the throw-away member
run at the lowest CPU priority, it refuses to restore when the scratch disk would be left with
less than SCRATCH_HEADROOM, and it gives up after DRILL_TIMEOUT. Its scratch files are removed.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import trio

from etcdmgr.backup.errors import BackupError
from etcdmgr.backup.figures import measure
from etcdmgr.backup.restore import fetch_backup
from etcdmgr.backup.scratch_etcd import scratch_etcd
from etcdmgr.etcd.versions import installed_binaries, pick_binaries
from etcdmgr.model.checks import DrillRecord, KeyspaceFigures, figure_differences
from etcdmgr.model.errors import EtcdmgrError
from etcdmgr.model.ids import BackupName, PeerId
from etcdmgr.model.values import EtcdVersion
from etcdmgr.store.interface import BackupStore
from etcdmgr.store.layout import VERIFY_FILE

log = logging.getLogger(__name__)

DRILL_TIMEOUT = 600.0
NICENESS = 19
SCRATCH_HEADROOM = 256 << 20  # bytes left free besides the restore (etcd's WAL alone takes 64 MB)
MAX_REASON = 1000


@dataclass
class _Seen:
    """What a drill learned before it ended, kept for its record however it ended."""

    version: EtcdVersion | None = None
    figures: KeyspaceFigures | None = None


async def drill_backup(
    store: BackupStore, name: BackupName, bin_dirs: Iterable[Path], workdir: Path, node: PeerId
) -> DrillRecord:
    """Drill backup ``name`` under ``workdir`` (removed after); never raises for a bad backup:
    the record says what failed."""
    started = time.monotonic()
    seen = _Seen()
    try:
        with trio.fail_after(DRILL_TIMEOUT):
            passed, reason = await _drill(store, name, tuple(bin_dirs), workdir, seen)
    except trio.TooSlowError:
        passed, reason = False, f"gave up after {DRILL_TIMEOUT:.0f}s"
    except (EtcdmgrError, OSError) as e:
        passed, reason = False, str(e) or type(e).__name__
    finally:
        await trio.to_thread.run_sync(lambda: shutil.rmtree(workdir, ignore_errors=True))
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 3] + "..."
    return DrillRecord(
        passed=passed,
        reason=reason,
        node=node,
        time=int(time.time()),
        seconds=round(time.monotonic() - started, 3),
        etcd_version=seen.version,
        figures=seen.figures,
    )


async def _drill(
    store: BackupStore, name: BackupName, bin_dirs: tuple[Path, ...], workdir: Path, seen: _Seen
) -> tuple[bool, str]:
    fetched = await fetch_backup(store, name, workdir / "backup")  # checksums and gzip checked
    expected = None
    if VERIFY_FILE in fetched.info.checksums:
        path = await store.fetch_backup_file(name, VERIFY_FILE, workdir / "backup" / VERIFY_FILE)
        expected = KeyspaceFigures.from_bytes(await trio.to_thread.run_sync(path.read_bytes))
    await trio.to_thread.run_sync(_check_space, workdir, fetched.snapshot)
    # Any 3.x etcd reads any 3.x snapshot: the installed one closest to the backup's version.
    binaries = pick_binaries(await installed_binaries(bin_dirs), fetched.info.etcd_version, any_version=True)
    seen.version = EtcdVersion(binaries.version)
    async with scratch_etcd(binaries, fetched, workdir / "etcd", niceness=NICENESS) as client:
        endpoint = client.endpoints[0]
        current = (await client.endpoint_status(endpoint)).revision
        at = current if expected is None else expected.revision
        seen.figures = replace(await measure(client, endpoint, at), revision=current)
    if expected is None:
        return True, (
            f"restored and served ({seen.figures.text()}); no figures were recorded when it was "
            "taken, so none were compared"
        )
    differences = figure_differences(expected, seen.figures)
    if differences:
        return False, "the restored keyspace differs: " + "; ".join(differences)
    return True, f"{expected.text()}: as the live member showed when it was taken"


def _check_space(workdir: Path, snapshot: Path) -> None:
    """Refuse a restore that would fill the disk the node's etcd may share."""
    need = snapshot.stat().st_size + SCRATCH_HEADROOM
    free = shutil.disk_usage(workdir).free
    if free < need:
        raise BackupError(
            f"not enough scratch space in {workdir}: {free >> 20} MiB free, restoring this backup "
            f"would leave less than {SCRATCH_HEADROOM >> 20} MiB"
        )
