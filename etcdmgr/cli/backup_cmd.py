"""`etcdmgr backup`: back up an etcd cluster that etcdmgr does not run (the original's etcd-backup).

Run one beside each member: only the one whose member is the etcd leader takes the backup, so
the cluster is backed up once per interval however many run.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio

from etcdmgr.backup.retention import Pruner
from etcdmgr.backup.take import BackupResult, take_backup
from etcdmgr.cli.exits import run_mode
from etcdmgr.cli.goflags import UsageError, parse
from etcdmgr.cli.store_flags import store_ca_file
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdUnavailable
from etcdmgr.etcd.versions import DEFAULT_BIN_DIRS, EtcdBinaries, installed_binaries, pick_binaries
from etcdmgr.model import EtcdmgrError, InvalidData
from etcdmgr.model.durations import parse_duration
from etcdmgr.model.tls import ClientTLS
from etcdmgr.model.values import parse_etcd_version
from etcdmgr.store import BackupStore, open_store
from etcdmgr.store.retention import Retention, retention_from_env

log = logging.getLogger("etcdmgr.backup")

USAGE = """\
Back up an etcd cluster that etcdmgr does not run. Run one beside each member: a backup is taken
only while the member reached is the etcd leader, so the cluster is backed up once per interval.
After each backup, old backups are pruned (at most hourly) as the daemon does:
ETCD_MANAGER_HOURLY_BACKUPS_RETENTION (default 7d) and ETCD_MANAGER_DAILY_BACKUPS_RETENTION (2y).

Usage:
  etcdmgr backup --backup-store=URL --endpoints=URLS [options]
  etcdmgr backup -h | --help

Options:
  --backup-store=URL    The backup store: file:///var/lib/etcd-backups/main, s3://bucket/prefix,
                        gs://bucket/prefix or azureblob://container/prefix; credentials from
                        the environment: AWS_* (or kops' S3_ENDPOINT, S3_ACCESS_KEY_ID,
                        S3_SECRET_ACCESS_KEY), GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*.
  --store-ca-file=FILE  CA certificates (PEM) to trust for the object store's endpoint, besides the
                        system's (default: $AWS_CA_BUNDLE or $SSL_CERT_FILE).
  --endpoints=URLS      Client URLs of the member to back up, comma-separated; the first that
                        answers is the one asked whether it leads and backed up.
  --interval=DURATION   Time between backups [default: 15m].
  --once                Take one backup (if the member leads), prune, and exit.
  --etcd-version=X.Y.Z  Version recorded in the backup and whose etcdctl is used
                        (default: the version the member reports).
  --with-v2             Also save the v2 keyspace (etcd must serve the v2 API, --enable-v2).
  --cacert=FILE         CA of the member's client certificate (https endpoints).
  --cert=FILE           Client certificate, when etcd asks for one.
  --key=FILE            Key of the client certificate.
  --etcd-bin-dir=DIRS   Extra directories with etcd-v<VERSION>*/ binaries (comma-separated).
"""

ROUND_TIMEOUT = 600.0


class Backuper:
    """One `etcdmgr backup` process: its settings and when it last pruned."""

    def __init__(self, args: dict[str, Any], store: BackupStore, retention: Retention) -> None:
        self.store = store
        self.pruner = Pruner(store, retention)
        self.endpoints = [e for e in str(args["--endpoints"]).split(",") if e]
        given = str(args["--etcd-version"] or "")
        self.version = parse_etcd_version(given.lstrip("v"), "--etcd-version") if given else None
        self.with_v2 = bool(args["--with-v2"])
        self.bin_dirs = [
            *DEFAULT_BIN_DIRS,
            *(Path(d) for d in str(args["--etcd-bin-dir"] or "").split(",") if d),
        ]
        ca = args["--cacert"]
        self.tls = (
            ClientTLS(Path(ca), *(Path(str(args[o])) if args[o] else None for o in ("--cert", "--key")))
            if ca
            else None
        )

    async def _binaries(self, version: str | None) -> EtcdBinaries:
        """The installed etcd for ``version`` (same minor), else the newest: etcdctl's snapshot
        and status calls work against any 3.x server."""
        return pick_binaries(await installed_binaries(self.bin_dirs), version, any_version=True)

    async def once(self) -> BackupResult | None:
        """Back up if the first member that answers is the leader; None when it is not."""
        binaries = await self._binaries(self.version)
        client = EtcdClient(self.endpoints, binaries, self.tls)
        errors: list[str] = []
        for endpoint in self.endpoints:
            try:
                status = await client.endpoint_status(endpoint)
                break
            except EtcdUnavailable as e:
                errors.append(str(e))
        else:
            raise EtcdUnavailable("no endpoint answered: " + "; ".join(errors))
        if status.member_id != status.leader_id:
            log.info("%s is not the etcd leader (leader %x); not backing up", endpoint, status.leader_id)
            return None
        version = self.version or parse_etcd_version(status.version, f"version reported by {endpoint}")
        if not self.version and version != binaries.version:
            binaries = await self._binaries(version)
            client = EtcdClient(self.endpoints, binaries, self.tls)
        with tempfile.TemporaryDirectory(prefix="etcdmgr-backup-") as scratch:
            result = await take_backup(
                client, endpoint, self.store, None, version, Path(scratch), with_v2=self.with_v2
            )
        print(f"backup {result.name}: {result.size} bytes in {result.seconds:.2f} s", flush=True)
        await self.pruner.after_backup()
        return result

    async def forever(self, interval: timedelta) -> None:
        while True:
            try:
                with trio.fail_after(ROUND_TIMEOUT):
                    await self.once()
            except (EtcdmgrError, trio.TooSlowError) as e:
                log.error("backup failed: %s", e)
            await trio.sleep(interval.total_seconds())


def main(argv: Sequence[str]) -> int:
    return run_mode("backup", lambda: _main(argv))


def _main(argv: Sequence[str]) -> None:
    args = parse(USAGE, "backup", argv, required=("--backup-store", "--endpoints"))
    try:
        interval = parse_duration(str(args["--interval"]))
        retention = retention_from_env(os.environ)
    except InvalidData as e:
        raise UsageError(str(e)) from None
    if interval <= timedelta(0):
        raise UsageError("--interval must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    backuper = Backuper(args, open_store(str(args["--backup-store"]), ca_file=store_ca_file(args)), retention)
    if args["--once"]:
        trio.run(backuper.once)
    else:
        trio.run(backuper.forever, interval)
