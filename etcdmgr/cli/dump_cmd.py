"""`etcdmgr dump`: every key of a backup, without a cluster (the original's etcd-dump)."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from etcdmgr.backup.restore import FetchedBackup, fetch_backup
from etcdmgr.backup.scratch_etcd import scratch_etcd
from etcdmgr.cli.exits import run_mode
from etcdmgr.cli.goflags import parse
from etcdmgr.cli.store_flags import store_ca_file
from etcdmgr.etcd.versions import DEFAULT_BIN_DIRS, EtcdBinaries, installed_binaries, pick_binaries
from etcdmgr.model.ids import parse_backup_name
from etcdmgr.store import open_store
from etcdmgr.util.atomic import write_atomic

USAGE = """\
Print every key of a backup: restore it into a throw-away etcd on free 127.0.0.1 ports, read
every v3 key, add the v2 keys saved beside the snapshot, then stop that etcd and clean up.

Usage:
  etcdmgr dump --backup-store=URL [--store-ca-file=FILE] [--out=FILE] [--etcd-bin-dir=DIRS] NAME
  etcdmgr dump -h | --help

Output: one JSON object a line, v3 keys first (in key order), then v2 keys:
  {"api": "v3", "key": "k", "value": "v", "createRevision": 2, "modRevision": 5, "version": 3}
  {"api": "v2", "key": "/a", "value": "1"}      (a directory: "dir": true; a TTL: "ttl": 30)
Bytes that are not UTF-8 come out as \\udcXX escapes.

Options:
  --backup-store=URL    The backup store: file:///var/lib/etcd-backups/main, s3://bucket/prefix,
                        gs://bucket/prefix or azureblob://container/prefix; credentials from
                        the environment: AWS_* (or kops' S3_ENDPOINT, S3_ACCESS_KEY_ID,
                        S3_SECRET_ACCESS_KEY), GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*.
  --store-ca-file=FILE  CA certificates (PEM) to trust for the object store's endpoint, besides the
                        system's (default: $AWS_CA_BUNDLE or $SSL_CERT_FILE).
  --out=FILE            Write to FILE instead of standard output.
  --etcd-bin-dir=DIRS   Extra directories with etcd-v<VERSION>*/ binaries (comma-separated).
"""


async def dump_lines(binaries: EtcdBinaries, fetched: FetchedBackup, workdir: Path) -> list[str]:
    """One JSON line per key of ``fetched`` (see USAGE)."""
    async with scratch_etcd(binaries, fetched, workdir) as client:
        kvs = await client.get_prefix("")
    lines: list[dict[str, Any]] = [
        {
            "api": "v3",
            "key": kv.key,
            "value": kv.value,
            "createRevision": kv.create_revision,
            "modRevision": kv.mod_revision,
            "version": kv.version,
        }
        for kv in kvs
    ]
    for node in fetched.v2 or ():
        line: dict[str, Any] = {"api": "v2", "key": node.key}
        line |= {"dir": True} if node.value is None else {"value": node.value}
        if node.ttl is not None:
            line["ttl"] = node.ttl
        lines.append(line)
    return [json.dumps(line) + "\n" for line in lines]


def _write(path: str | None, lines: list[str]) -> None:
    if path is None:
        sys.stdout.writelines(lines)
        sys.stdout.flush()
        return
    # The whole keyspace: readable by the owner only, whatever the umask.
    write_atomic(Path(path), "".join(lines).encode(), mode=0o600)


async def _run(args: dict[str, Any]) -> None:
    store = open_store(str(args["--backup-store"]), ca_file=store_ca_file(args))
    bin_dirs = [*DEFAULT_BIN_DIRS, *(Path(d) for d in str(args["--etcd-bin-dir"] or "").split(",") if d)]
    name = parse_backup_name(args["NAME"], "NAME")
    with tempfile.TemporaryDirectory(prefix="etcdmgr-dump-") as tmp:
        fetched = await fetch_backup(store, name, Path(tmp) / "backup")
        # The installed etcd closest to the backup's version; any 3.x reads any 3.x snapshot.
        installed = await installed_binaries(bin_dirs)
        binaries = pick_binaries(installed, fetched.info.etcd_version, any_version=True)
        lines = await dump_lines(binaries, fetched, Path(tmp) / "etcd")
    await trio.to_thread.run_sync(_write, str(args["--out"]) if args["--out"] else None, lines)
    print(
        f"etcdmgr dump: {len(lines)} keys of backup {name} (read with etcd {binaries.version})",
        file=sys.stderr,
    )


def main(argv: Sequence[str]) -> int:
    return run_mode("dump", lambda: trio.run(_run, parse(USAGE, "dump", argv, required=("--backup-store",))))
