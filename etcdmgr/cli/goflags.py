"""Accept the original's Go-style flags: `-member-count=1` means `--member-count=1`.

Go's flag package takes one or two dashes alike; docopt wants two for long options.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from docopt import DocoptExit, docopt

_LONG_OPTION = re.compile(r"--([a-z0-9][a-z0-9-]*)")


def long_options(usage: str) -> set[str]:
    return set(_LONG_OPTION.findall(usage))


def normalize(argv: Iterable[str], known: set[str]) -> list[str]:
    out: list[str] = []
    for arg in argv:
        if arg == "--":
            out.append(arg)
            continue
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
            name = arg[1:].split("=", 1)[0]
            if name in known:
                arg = "-" + arg
        out.append(arg)
    return out


class UsageError(Exception):
    """Bad command line; the message is what the user should read. Exit code 2."""


class HelpShown(Exception):
    """-h or --help: the usage is printed. Exit code 0."""


def parse(usage: str, mode: str, argv: Sequence[str], required: Sequence[str] = ()) -> dict[str, object]:
    """docopt with Go-style flags; raises UsageError instead of exiting, also when one of the
    `required` options is missing or empty.

    The usage lines read `etcdmgr MODE ...`, so docopt sees MODE as the first word.
    """
    args = [mode, *normalize(argv, long_options(usage))]
    if any(a in ("-h", "--help") for a in args):
        print(usage, end="")
        raise HelpShown
    try:
        parsed = docopt(usage, argv=args, default_help=False)
    except DocoptExit as e:
        raise UsageError(str(e) or usage) from None
    for option in required:
        if not parsed.get(option):
            raise UsageError(f"{option} is required (see --help)")
    return dict(parsed)
