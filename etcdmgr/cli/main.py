"""Dispatch to a mode by the first word, or by the name the file was run as.

`etcdmgr daemon ...`, `etcdmgr ctl ...`; run through a link named `etcd-manager` or
`etcd-manager-ctl` it acts as that mode, so it drops in for the original's binaries.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

USAGE = """\
etcdmgr: runs beside each etcd member and keeps the etcd cluster converged to its spec.

Usage:
  etcdmgr daemon [FLAGS...]     run the manager beside one etcd member (see: etcdmgr daemon --help)
  etcdmgr ctl [FLAGS...] CMD    edit the desired state in the backup store (see: etcdmgr ctl --help)
  etcdmgr pki ...               create CAs and issue client certificates (see: etcdmgr pki --help)
  etcdmgr backup [FLAGS...]     back up an etcd this tool does not run (see: etcdmgr backup --help)
  etcdmgr dump [FLAGS...] NAME  print every key of a backup, without a cluster (see: etcdmgr dump --help)
  etcdmgr version               print the version, the build, the Python and the etcd versions found
  etcdmgr --help

Linked as `etcd-manager` it runs `daemon`; linked as `etcd-manager-ctl` it runs `ctl`.
"""

ALIASES = {"etcd-manager": "daemon", "etcd-manager-ctl": "ctl"}


def _daemon(argv: Sequence[str]) -> int:
    from etcdmgr.cli.daemon_cmd import main as daemon_main

    return daemon_main(argv)


def _ctl(argv: Sequence[str]) -> int:
    from etcdmgr.cli.ctl_cmd import main as ctl_main

    return ctl_main(argv)


def _pki(argv: Sequence[str]) -> int:
    from etcdmgr.cli.pki_cmd import main as pki_main

    return pki_main(argv)


def _backup(argv: Sequence[str]) -> int:
    from etcdmgr.cli.backup_cmd import main as backup_main

    return backup_main(argv)


def _dump(argv: Sequence[str]) -> int:
    from etcdmgr.cli.dump_cmd import main as dump_main

    return dump_main(argv)


def _version(argv: Sequence[str]) -> int:
    from etcdmgr.cli.version_cmd import main as version_main

    return version_main(argv)


MODES: dict[str, Callable[[Sequence[str]], int]] = {
    "daemon": _daemon,
    "ctl": _ctl,
    "pki": _pki,
    "backup": _backup,
    "dump": _dump,
    "version": _version,
}


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    name = os.path.basename(prog if prog is not None else sys.argv[0])
    for suffix in (".pyz", ".py"):
        name = name.removesuffix(suffix)
    if name in ALIASES:
        return MODES[ALIASES[name]](args)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 2
    if args[0] in ("--version", "-version"):
        return _version(args[1:])
    mode = MODES.get(args[0])
    if mode is None:
        print(f"etcdmgr: unknown mode {args[0]!r}\n\n{USAGE}", end="", file=sys.stderr)
        return 2
    return mode(args[1:])
