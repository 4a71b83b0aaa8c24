"""`etcdmgr ctl`: read and edit the desired state in the backup store.

ctl talks only to the backup store, never to a daemon; the leader picks changes up on its own.
Everything is validated before anything is written.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from etcdmgr.cli.exits import run_mode
from etcdmgr.cli.goflags import UsageError, parse
from etcdmgr.cli.prototext import command_text, spec_text
from etcdmgr.cli.store_flags import store_ca_file
from etcdmgr.etcd.versions import DEFAULT_BIN_DIRS, installed_versions
from etcdmgr.model import ClusterSpec, EtcdmgrError, InvalidData
from etcdmgr.model.command import Command, RestoreBackup
from etcdmgr.model.ids import BackupName, CommandName, parse_backup_name, parse_command_name
from etcdmgr.model.values import parse_etcd_version, parse_member_count
from etcdmgr.store import BackupStore, open_store
from etcdmgr.store.interface import FailedCommand

USAGE = """\
Read and change the desired state of an etcd cluster, kept in its backup store.
The daemons pick every change up by themselves; no restart is needed.

Usage:
  etcdmgr ctl [options] get
  etcdmgr ctl [options] configure-cluster
  etcdmgr ctl [options] list-backups
  etcdmgr ctl [options] list-commands
  etcdmgr ctl [options] delete-command NAME
  etcdmgr ctl [options] restore-backup NAME
  etcdmgr ctl -h | --help

Commands:
  get                 Print the cluster spec.
  configure-cluster   Set the cluster spec: read it, override the fields given
                      (member count, etcd version), write it back.
  list-backups        List the backups in the store, oldest first.
  list-commands       List queued commands (e.g. restore-backup), in the order they run;
                      failed ones are shown with why (leaders skip them: delete them).
  delete-command NAME Remove a queued command.
  restore-backup NAME Queue a restore of backup NAME (see list-backups). The leader restores it
                      into a new cluster of the current spec; data written after it is lost.

Flags may be written with one dash or two, as the original etcd-manager-ctl takes them.

Options:
  --backup-store=URL    The backup store: file:///var/lib/etcd-backups/main, s3://bucket/prefix,
                        gs://bucket/prefix or azureblob://container/prefix; credentials from
                        the environment: AWS_* (or kops' S3_ENDPOINT, S3_ACCESS_KEY_ID,
                        S3_SECRET_ACCESS_KEY), GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*.
  --store-ca-file=FILE  CA certificates (PEM) to trust for the object store's endpoint, besides the
                        system's (default: $AWS_CA_BUNDLE or $SSL_CERT_FILE).
  --member-count=N      Number of etcd members (odd: 1, 3, 5).
  --etcd-version=X.Y.Z  etcd version to run (3.3 or newer).
  -o FORMAT, --output=FORMAT
                        Output format of get, list-backups and list-commands: text or json
                        [default: text].
  --etcd-bin-dir=DIRS   Extra directories with etcd-v<VERSION>*/ binaries, only used to warn
                        when the requested version is not installed on this host.
"""


class CtlError(EtcdmgrError):
    """A ctl command that cannot be carried out; printed as one line, exit 1."""


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


async def _get(store: BackupStore, output: str) -> None:
    spec = await store.read_spec()
    if spec is None:
        raise CtlError(f"no cluster spec in {store.url}; set one with configure-cluster")
    if output == "json":
        _print_json(spec.to_json())
    else:
        print(spec_text(spec))


def _updated_spec(current: ClusterSpec | None, member_count: str, etcd_version: str) -> ClusterSpec:
    """``current`` with the fields given on the command line replaced (a missing spec needs both)."""
    try:
        count = parse_member_count(member_count, "--member-count") if member_count else None
        version = parse_etcd_version(etcd_version.lstrip("v"), "--etcd-version") if etcd_version else None
        if count is None or version is None:
            if current is None:
                raise CtlError("no cluster spec yet: give both --member-count and --etcd-version")
            count = current.member_count if count is None else count
            version = current.etcd_version if version is None else version
        spec = ClusterSpec(member_count=count, etcd_version=version)
        spec.validate()
    except InvalidData as e:
        raise CtlError(str(e)) from None
    return spec


def _warnings(spec: ClusterSpec, bin_dirs: Sequence[str]) -> list[str]:
    out = []
    if spec.member_count % 2 == 0:
        out.append(
            f"warning: {spec.member_count} members survive {(spec.member_count - 1) // 2} failed member(s), "
            f"no more than {spec.member_count - 1} do; an odd count is recommended"
        )
    installed = installed_versions([*map(Path, bin_dirs), *DEFAULT_BIN_DIRS])
    if spec.etcd_version not in installed:
        have = ", ".join(installed) or "none"
        out.append(
            f"warning: etcd {spec.etcd_version} is not installed on this host (installed: {have}); "
            "the daemons need it, or another patch release of the same minor"
        )
    return out


async def _configure(
    store: BackupStore, member_count: str, etcd_version: str, bin_dirs: Sequence[str]
) -> None:
    if not (member_count or etcd_version):
        raise CtlError("configure-cluster needs --member-count and/or --etcd-version")
    try:
        current = await store.read_spec()
    except InvalidData as e:
        if not (member_count and etcd_version):
            raise CtlError(f"{e}; give both --member-count and --etcd-version to replace it") from None
        print(f"warning: replacing an unreadable spec: {e}", file=sys.stderr)
        current = None
    spec = _updated_spec(current, member_count, etcd_version)
    for warning in _warnings(spec, bin_dirs):
        print(warning, file=sys.stderr)
    await store.write_spec(spec)
    print(f"cluster spec set: {spec_text(spec)}")


async def _list_backups(store: BackupStore, output: str) -> None:
    names = await store.list_backups()
    if output == "json":
        _print_json(names)
    else:
        for name in names:
            print(name)


async def _list_commands(store: BackupStore, output: str) -> None:
    listing = await store.list_commands()
    failed = listing.failed
    everything = sorted(
        [*listing.commands, *(f.command for f in failed.values())], key=lambda c: (c.timestamp, c.name)
    )
    if output == "json":
        _print_json({c.name: _command_json(c, failed.get(c.name) if c.name else None) for c in everything})
    else:
        for c in everything:
            f = failed.get(c.name) if c.name else None
            print(f"{c.name}\t{command_text(c)}" + (f"\tFAILED {f.failed_at}: {f.reason}" if f else ""))
    for problem in listing.problems:
        print(f"warning: {problem}", file=sys.stderr)


def _command_json(cmd: Command, failure: FailedCommand | None) -> dict[str, object]:
    doc: dict[str, object] = cmd.to_json()
    if failure is not None:
        doc["failed"] = {"reason": failure.reason, "time": failure.failed_at}
    return doc


async def _delete_command(store: BackupStore, name: CommandName) -> None:
    listing = await store.list_commands()
    if name not in {c.name for c in listing.commands} | set(listing.broken) | set(listing.failed):
        raise CtlError(f"no queued command named {name!r} (see list-commands)")
    await store.remove_command(name)
    print(f"deleted command {name}")


async def _restore_backup(store: BackupStore, name: BackupName) -> None:
    spec = await store.read_spec()
    if spec is None:
        raise CtlError("no cluster spec in the store: set one with configure-cluster first")
    if name not in await store.list_backups():
        raise CtlError(f"no backup named {name!r} in {store.url} (see list-backups)")
    try:
        await store.read_backup_info(name)
    except EtcdmgrError as e:
        raise CtlError(f"backup {name} cannot be restored: {e}") from None
    cmd = Command(
        name=None, timestamp=time.time_ns(), restore_backup=RestoreBackup(cluster_spec=spec, backup=name)
    )
    await store.add_command(cmd)
    print(f"added restore-backup command: {command_text(cmd)}")


async def _run(args: dict[str, object]) -> None:
    def opt(name: str) -> str:
        value = args.get(name)
        return value if isinstance(value, str) else ""

    output = opt("--output")
    if output not in ("text", "json"):
        raise UsageError(f"--output must be text or json, got {output!r}")
    store = open_store(opt("--backup-store"), ca_file=store_ca_file(args))
    bin_dirs = [d for d in opt("--etcd-bin-dir").split(",") if d]
    if args["get"]:
        await _get(store, output)
    elif args["configure-cluster"]:
        await _configure(store, opt("--member-count"), opt("--etcd-version"), bin_dirs)
    elif args["list-backups"]:
        await _list_backups(store, output)
    elif args["list-commands"]:
        await _list_commands(store, output)
    elif args["delete-command"]:
        await _delete_command(store, parse_command_name(opt("NAME"), "NAME"))
    elif args["restore-backup"]:
        await _restore_backup(store, parse_backup_name(opt("NAME"), "NAME"))


def main(argv: Sequence[str]) -> int:
    return run_mode("ctl", lambda: trio.run(_run, parse(USAGE, "ctl", argv, required=("--backup-store",))))
