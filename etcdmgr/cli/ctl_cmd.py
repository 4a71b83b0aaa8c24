"""`etcdmgr ctl`: read and edit the desired state in the backup store.

ctl talks only to the backup store, never to a daemon; the leader picks changes up on its own.
Everything is validated before anything is written.

A command on a folder store that does not wait runs without an event loop (its store calls
block in threads, store/deadline.py), and each command imports only what it uses: importing
trio alone takes longer than reading the spec.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from etcdmgr.cli.exits import run_mode
from etcdmgr.cli.goflags import KLOG_OPTIONS, UsageError, parse
from etcdmgr.cli.prototext import command_text, spec_text
from etcdmgr.cli.store_flags import store_ca_file
from etcdmgr.model import ClusterSpec, EtcdmgrError, InvalidData
from etcdmgr.model.command import Command, RestoreBackup
from etcdmgr.model.durations import parse_setting
from etcdmgr.model.ids import BackupName, CommandName, parse_backup_name, parse_command_name
from etcdmgr.model.values import parse_etcd_version, parse_member_count
from etcdmgr.store import BackupStore, FileStore, open_store
from etcdmgr.store.interface import FailedCommand

T = TypeVar("T")

USAGE = (
    """\
Read and change the desired state of an etcd cluster, kept in its backup store.
The daemons pick every change up by themselves; no restart is needed.

Usage:
  etcdmgr ctl [options]
  etcdmgr ctl [options] get
  etcdmgr ctl [options] configure-cluster
  etcdmgr ctl [options] status
  etcdmgr ctl [options] list-backups [--since=WHEN] [--limit=N]
  etcdmgr ctl [options] backup-now [--wait]
  etcdmgr ctl [options] list-commands
  etcdmgr ctl [options] delete-command NAME
  etcdmgr ctl [options] restore-backup NAME [--wait]
  etcdmgr ctl -h | --help

Commands:
  get                 Print the cluster spec (also what ctl does without a command).
  configure-cluster   Set the cluster spec: read it, override the fields given
                      (member count, etcd version), write it back.
  status              What the cluster is doing now, as its leader last wrote it into the
                      store: every peer, the last decision, backup and restore drill, and
                      certificate expiry. Exits 1, saying why on stderr, when the status is
                      stale (no leader is writing it) or the cluster is degraded.
  list-backups        List the backups in the store, oldest first (-o wide or json: size,
                      age, etcd version, spec, checksums, figures and the last restore drill).
  backup-now          Ask the leader for a backup now; it takes it within a cycle. Waiting
                      (--wait), print the new backup's name once it is stored.
  list-commands       List queued commands (e.g. restore-backup), in the order they run;
                      failed ones are shown with why (leaders skip them: delete them).
  delete-command NAME Remove queued commands: NAME is a backup name (every restore-backup of
                      that backup is removed, as the original's delete-command does), or the
                      name of one command (the first column of list-commands).
  restore-backup NAME Queue a restore of backup NAME (see list-backups). The leader restores it
                      into a new cluster of the current spec; data written after it is lost.
                      With --wait, follow it phase by phase until the cluster serves; exits 1
                      with the leader's reason if it fails.

Flags may be written with one dash or two, as the original etcd-manager-ctl takes them.

Options:
  --backup-store=URL    The backup store: file:///var/lib/etcd-backups/main, s3://bucket/prefix,
                        gs://bucket/prefix or azureblob://container/prefix; credentials from
                        the environment: AWS_* (or kops' S3_ENDPOINT, S3_ACCESS_KEY_ID,
                        S3_SECRET_ACCESS_KEY), GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*.
  --store-ca-file=FILE  CA certificates (PEM) to trust for the object store's endpoint, besides the
                        system's (default: $AWS_CA_BUNDLE or $SSL_CERT_FILE).
  --member-count=N      Number of etcd members (odd: 1, 3, 5).
  --etcd-version=X.Y.Z  etcd version to run: 3.3 to 3.5 are tested; a newer minor (3.6) is
                        refused unless its binaries are installed on this host.
  -o FORMAT, --output=FORMAT
                        Output format of get, status, list-backups and list-commands: text or
                        json; list-backups also takes wide [default: text].
  --since=WHEN          list-backups: only those taken since WHEN, a duration back from now
                        (24h) or a time (2024-01-02T15:04:05Z).
  --limit=N             list-backups: only the N newest.
  --wait                backup-now, restore-backup: wait until it is done.
  --timeout=DURATION    How long --wait waits [default: 10m].
  --etcd-bin-dir=DIRS   Extra directories with etcd-v<VERSION>*/ binaries, only used to warn
                        when the requested version is not installed on this host (and to
                        allow an untested one that is).
"""
    + KLOG_OPTIONS
)


COMMANDS = (
    "get",
    "configure-cluster",
    "status",
    "list-backups",
    "backup-now",
    "list-commands",
    "delete-command",
    "restore-backup",
)


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
    from etcdmgr.etcd.versions import DEFAULT_BIN_DIRS, installed_versions, untested

    out = []
    if spec.member_count % 2 == 0:
        out.append(
            f"warning: {spec.member_count} members survive {(spec.member_count - 1) // 2} failed member(s), "
            f"no more than {spec.member_count - 1} do; an odd count is recommended"
        )
    installed = installed_versions([*map(Path, bin_dirs), *DEFAULT_BIN_DIRS])
    if note := untested(spec.etcd_version):
        out.append(f"warning: {note}")
    if spec.etcd_version not in installed:
        have = ", ".join(installed) or "none"
        out.append(
            f"warning: etcd {spec.etcd_version} is not installed on this host (installed: {have}); "
            "the daemons need it, or another patch release of the same minor"
        )
    return out


def _refuse_untested_missing(spec: ClusterSpec, bin_dirs: Sequence[str]) -> None:
    """A version newer than any tested is written only where its binaries are installed (this
    host or --etcd-bin-dir): one line, and no spec, otherwise."""
    from etcdmgr.etcd.versions import DEFAULT_BIN_DIRS, installed_versions, resolve_version, untested_refusal

    refusal = untested_refusal(spec.etcd_version)
    installed = installed_versions([*map(Path, bin_dirs), *DEFAULT_BIN_DIRS])
    if refusal and resolve_version(spec.etcd_version, installed)[0] is None:
        raise CtlError(f"etcd {spec.etcd_version} refused: {refusal}")


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
    _refuse_untested_missing(spec, bin_dirs)
    for warning in _warnings(spec, bin_dirs):
        print(warning, file=sys.stderr)
    await store.write_spec(spec)
    print(f"cluster spec set: {spec_text(spec)}")


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


async def _delete_command(store: BackupStore, name: str) -> None:
    """Remove the restore-backup commands of backup `name`, or the command named `name`."""
    listing = await store.list_commands()
    commands = [*listing.commands, *(f.command for f in listing.failed.values())]
    names = {c.name for c in commands} | set(listing.broken)
    matching = [
        c.name
        for c in commands
        if c.restore_backup is not None and c.restore_backup.backup == name and c.name
    ]
    if not matching and name in names:
        matching = [CommandName(name)]
    if not matching:
        raise CtlError(
            f"no queued command named {name!r}, nor any restore of a backup so named (see list-commands)"
        )
    for command in sorted(set(matching)):
        await store.remove_command(command)
        print(f"deleted command {command}")


async def _restore_backup(store: BackupStore, name: BackupName) -> tuple[CommandName, ClusterSpec]:
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
    queued = await store.add_command(cmd)
    print(f"added restore-backup command: {command_text(cmd)}", flush=True)
    return queued, spec


def _opt(args: dict[str, object], name: str) -> str:
    value = args.get(name)
    return value if isinstance(value, str) else ""


def _start(args: dict[str, object]) -> int | None:
    output = _opt(args, "--output")
    if output not in ("text", "json", "wide") or (output == "wide" and not args["list-backups"]):
        raise UsageError(f"--output must be text or json (list-backups: also wide), got {output!r}")
    try:
        timeout = parse_setting(_opt(args, "--timeout"), "--timeout")
    except InvalidData as e:
        raise UsageError(str(e)) from None
    store = open_store(_opt(args, "--backup-store"), ca_file=store_ca_file(args))
    if isinstance(store, FileStore) and not args["--wait"]:
        return _without_loop(_run(args, store, output, timeout))
    import trio

    return trio.run(_run, args, store, output, timeout)


def _without_loop(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends (it waits only on store calls, which block
    in threads outside a trio run)."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise RuntimeError("this ctl command waits on the event loop: it must run under trio")


async def _run(args: dict[str, object], store: BackupStore, output: str, timeout: timedelta) -> int | None:
    def opt(name: str) -> str:
        return _opt(args, name)

    bin_dirs = [d for d in opt("--etcd-bin-dir").split(",") if d]
    if args["get"] or not any(args[c] for c in COMMANDS):
        await _get(store, output)
    elif args["configure-cluster"]:
        await _configure(store, opt("--member-count"), opt("--etcd-version"), bin_dirs)
    elif args["status"]:
        from etcdmgr.cli.ctl_status import show_status

        return await show_status(store, output)
    elif args["list-backups"]:
        from etcdmgr.cli.ctl_backups import list_backups

        await list_backups(store, output, opt("--since"), opt("--limit"))
    elif args["backup-now"]:
        from etcdmgr.cli.ctl_backups import backup_now

        await backup_now(store, bool(args["--wait"]), timeout)
    elif args["list-commands"]:
        await _list_commands(store, output)
    elif args["delete-command"]:
        await _delete_command(store, parse_command_name(opt("NAME"), "NAME"))  # backup names parse too
    elif args["restore-backup"]:
        backup = parse_backup_name(opt("NAME"), "NAME")
        command, spec = await _restore_backup(store, backup)
        if args["--wait"]:
            from etcdmgr.cli.ctl_follow import follow_restore

            await follow_restore(store, command, backup, spec, timeout)
    return None


def main(argv: Sequence[str]) -> int:
    return run_mode("ctl", lambda: _start(parse(USAGE, "ctl", argv, required=("--backup-store",))))
