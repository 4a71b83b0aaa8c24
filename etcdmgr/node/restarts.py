"""When to start etcd again after a failed start, and what to report about it. Pure.

A failed start is a start that raised (no binary, certificates, ports) or an etcd that exited
within STABLE_AFTER seconds of its start. Failed starts in a row are retried after 1, 2, 4 ...
seconds, at most BACKOFF_CAP; one that runs STABLE_AFTER seconds ends the row. Each distinct
failure (its exit code and etcd's last error line, without time stamps) is reported once with
etcd's last lines; the same failure again gets one short line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

BACKOFF_FIRST = 1.0
BACKOFF_CAP = 60.0
STABLE_AFTER = 30.0  # seconds: an etcd that ran this long started fine
MAX_PROBLEM = 600  # characters of the problem GetInfo reports

_ERROR_LEVELS = frozenset({"error", "dpanic", "panic", "fatal"})
# capnslog (etcd 3.3): "2024-01-02 03:04:05.678901 C | etcdmain: listen tcp ...: bind: ..."
_CAPNSLOG = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ ([A-Z]) \| (.*)$")
_STAMP = re.compile(r"^\d{4}-\d\d-\d\d[ T][\d:.]+Z?\s*")


def error_line(tail: str) -> str:
    """etcd's last error in its output, without time stamps: zap's msg and error of the last
    line at error level or worse, capnslog's last C/E line, a Go panic, else the last line."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in _ERROR_LEVELS:
                msg, error = str(entry.get("msg", "")), entry.get("error")
                return f"{msg}: {error}" if error else msg
        elif m := _CAPNSLOG.match(line):
            if m.group(1) in "CEF":
                return m.group(2)
        elif line.startswith("panic: "):
            return line
    return _STAMP.sub("", lines[-1]) if lines else "no output"


@dataclass(frozen=True)
class Failures:
    """The failed starts in a row of one etcd state."""

    count: int = 0
    first_at: datetime | None = None  # wall time of the first, for the report
    last: str = ""  # the last one, in a sentence
    reported: str = ""  # the signature of the last failure logged in full

    def failed(self, what: str, signature: str, now: datetime) -> tuple[Failures, bool]:
        """Count one more failure; True when it is unlike the one reported last (log it in full)."""
        new = replace(
            self, count=self.count + 1, first_at=self.first_at or now, last=what, reported=signature
        )
        return new, signature != self.reported

    def pause(self) -> float:
        """Seconds before the next try."""
        return 0.0 if self.count == 0 else min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (self.count - 1))

    def problem(self) -> str | None:
        """What GetInfo reports while etcd keeps failing (None once it runs, or before a failure)."""
        if self.count == 0 or self.first_at is None:
            return None
        text = (
            f"{self.last} (failed start {self.count} in a row since "
            f"{self.first_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}; retried after at most {BACKOFF_CAP:.0f}s)"
        )
        return text if len(text) <= MAX_PROBLEM else text[: MAX_PROBLEM - 3] + "..."
