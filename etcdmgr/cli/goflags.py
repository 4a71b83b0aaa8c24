"""Read command lines as Go's flag package (the original's) reads them, then let docopt match
the commands and arguments.

- One dash or two: `-member-count=1` is `--member-count=1`.
- `-flag value` and `-flag=value`; a boolean flag alone is true, and takes `=true`/`=false`
  (or the other spellings Go's strconv.ParseBool takes).
- A flag given twice: the last one wins (as in Go), except repeatable ones, which keep every
  value in order (a list in the parsed result).
- A flag the usage does not name is refused in one line naming it, never with docopt's words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from docopt import DocoptExit, docopt, parse_options

_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_HELP = frozenset({"-h", "--help", "-help"})
_USAGE_FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z0-9][\w-]*)(=)?")


# klog's flags (klog.InitFlags), which the original's binaries all take: accepted here and not
# used, since logs go to standard error. Appended to a mode's usage.
KLOG_OPTIONS = """
Log options of the original (klog), accepted and not used: logs go to standard error.
  --v=LEVEL                  klog verbosity.
  --vmodule=SPEC             klog per-file verbosity.
  --logtostderr              klog: log to standard error.
  --alsologtostderr          klog: log to standard error too.
  --stderrthreshold=LEVEL    klog: what goes to standard error.
  --log_dir=DIR              klog: log folder.
  --log_file=FILE            klog: log file.
  --log_file_max_size=MB     klog: log file size limit.
  --skip_headers             klog: no line headers.
  --skip_log_headers         klog: no file headers.
  --add_dir_header           klog: folder in headers.
  --one_output               klog: one output per level.
  --log_backtrace_at=AT      klog: stack trace at FILE:LINE.
  --legacy_stderr_threshold_behavior
                             klog: threshold behaviour.
"""
KLOG_FLAGS = tuple(
    line.split()[0].split("=")[0] for line in KLOG_OPTIONS.splitlines() if line.startswith("  --")
)


class UsageError(Exception):
    """Bad command line; the message is what the user should read. Exit code 2."""


class HelpShown(Exception):
    """-h or --help: the usage is printed. Exit code 0."""


def _usage_section(usage: str) -> str:
    """The `Usage:` lines (up to the first blank line after them)."""
    start = usage.find("Usage:")
    if start < 0:
        return ""
    end = usage.find("\n\n", start)
    return usage[start : end if end >= 0 else len(usage)]


def flag_table(usage: str) -> dict[str, bool]:
    """Every flag the usage names (`--name` or a short `-o`) -> whether it takes a value."""
    table: dict[str, bool] = {}
    for option in parse_options(usage):
        for name in (option.longer, option.short):
            if name:
                table[name] = option.argcount > 0
    for name, eq in _USAGE_FLAG.findall(_usage_section(usage)):
        table.setdefault(name, bool(eq))
    return table


def go_bool(text: str, flag: str) -> bool:
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise UsageError(f"invalid boolean value {text!r} for {flag} (use true or false)")


def normalize(
    argv: Sequence[str], table: dict[str, bool], repeatable: Sequence[str] = ()
) -> tuple[list[str], dict[str, list[str]]]:
    """Go-style flags -> a command line docopt reads (each flag once, `--name=value` or a bare
    `--name` for a true boolean, then the other words), and the values of repeatable flags."""
    values: dict[str, str | bool] = {}
    repeated: dict[str, list[str]] = {name: [] for name in repeatable}
    words: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            words += argv[i - 1 :]
            break
        if not arg.startswith("-") or arg == "-":
            words.append(arg)
            continue
        body, eq, value = arg.lstrip("-").partition("=")
        name = f"--{body}"
        if name not in table and len(body) == 1 and f"-{body}" in table:
            name = f"-{body}"  # a short option (ctl's -o)
        if name not in table or arg.startswith("---"):
            raise UsageError(f"unknown flag {arg.partition('=')[0]} (see --help)")
        if table[name]:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"flag {name} needs a value")
                value = argv[i]
                i += 1
            if name in repeated:
                repeated[name].append(value)
            values[name] = value
        else:
            values[name] = go_bool(value, name) if eq else True
    out: list[str] = []
    for name, v in values.items():
        if v is True:
            out.append(name)
        elif isinstance(v, str):
            out.append(f"{name}={v}" if name.startswith("--") else name)
            if not name.startswith("--"):
                out.append(v)
    return out + words, repeated


def parse(
    usage: str,
    mode: str,
    argv: Sequence[str],
    required: Sequence[str] = (),
    repeatable: Sequence[str] = (),
) -> dict[str, object]:
    """docopt with Go-style flags; raises UsageError instead of exiting, also when one of the
    `required` options is missing or empty. Repeatable flags come back as lists.

    The usage lines read `etcdmgr MODE ...`, so docopt sees MODE as the first word.
    """
    if any(a in _HELP for a in argv):
        print(usage, end="")
        raise HelpShown
    args, repeated = normalize(argv, flag_table(usage), repeatable)
    try:
        parsed: dict[str, object] = dict(docopt(usage, argv=[mode, *args], default_help=False))
    except DocoptExit:
        words = [a for a in args if not a.startswith("-")]
        if words:
            raise UsageError(
                f"{' '.join(words)!r} does not fit `etcdmgr {mode}` (see etcdmgr {mode} --help)"
            ) from None
        raise UsageError(f"a command or argument is missing (see etcdmgr {mode} --help)") from None
    for option in required:
        if not parsed.get(option):
            raise UsageError(f"{option} is required (see --help)")
    parsed.update(repeated)
    return parsed
