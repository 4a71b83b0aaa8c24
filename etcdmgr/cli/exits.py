"""How every mode ends: its exit code, and one line on stderr for an error the user can act on."""

from __future__ import annotations

import sys
from collections.abc import Callable

from etcdmgr.cli.goflags import HelpShown, UsageError
from etcdmgr.model import EtcdmgrError


def run_mode(mode: str, body: Callable[[], int | None]) -> int:
    """Run one mode: its own exit code (None: 0); a bad command line 2; a failure 1; Ctrl-C 130."""
    try:
        return body() or 0
    except HelpShown:
        return 0
    except UsageError as e:
        print(f"etcdmgr {mode}: {e}", file=sys.stderr)
        return 2
    except EtcdmgrError as e:
        print(f"etcdmgr {mode}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
