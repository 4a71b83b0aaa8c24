"""The daemon's log lines: text (as before) or one JSON object per line; each says which node
wrote it and whether that node leads."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Fields a log call may add with extra={...}; the decision lines carry action and reason.
EXTRA_FIELDS = ("action", "reason")
TEXT_FORMAT = "%(asctime)s [%(node)s] %(levelname)s %(name)s: %(message)s"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def parse_log_level(name: str) -> int:
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {name!r}") from None


def log_level_from(v: int) -> int:
    """The level for klog's -v (the original's --v=N): klog prints its Info lines at every
    verbosity and its detail from 4 on, so 0-3 is info and 4 or more is debug."""
    return logging.DEBUG if v >= 4 else logging.INFO


@dataclass
class _Context:
    peer: str = ""
    cluster: str = ""
    leading: Callable[[], bool] = lambda: False


_context = _Context()


def set_log_context(peer: str, cluster: str, leading: Callable[[], bool]) -> None:
    """From now on every line names this node and says whether `leading()` holds."""
    _context.peer, _context.cluster, _context.leading = peer, cluster, leading


class _AddContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        leads = bool(_context.peer) and _context.leading()
        record.peer, record.cluster, record.leader = _context.peer, _context.cluster, leads
        record.node = f"{_context.peer} {'leader' if leads else 'follower'}" if _context.peer else "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (RFC 3339, UTC), level, logger, msg, peer, cluster, leader,
    the extra fields of EXTRA_FIELDS when given, and exc (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "peer": getattr(record, "peer", ""),
            "cluster": getattr(record, "cluster", ""),
            "leader": getattr(record, "leader", False),
        }
        for name in EXTRA_FIELDS:
            if hasattr(record, name):
                out[name] = getattr(record, name)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(
    fmt: LogFormat = LogFormat.TEXT, level: int = logging.INFO, stream: IO[str] | None = None
) -> None:
    """Log to stderr (or `stream`) in `fmt` from `level` on; replaces any handler set before."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_AddContext())
    handler.setFormatter(JsonFormatter() if fmt is LogFormat.JSON else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
