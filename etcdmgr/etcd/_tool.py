"""Running etcdctl / etcdutl: a clean environment, a hard deadline, errors mapped to types."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence

import trio

from etcdmgr.etcd.errors import (
    EtcdError,
    EtcdMemberNotFound,
    EtcdTimeout,
    EtcdTransient,
    EtcdUnavailable,
)

# etcd's own words for "not now, try again shortly" (membership changes, learners catching up,
# leader elections).
_TRANSIENT = (
    "unhealthy cluster",
    "too many learner members",
    "can only promote a learner member which is in sync with leader",
    "not enough started members",
    "leader changed",
    "no leader",
    "request timed out",
    "too many requests",
)
# The client could not get an answer from any member.
_UNAVAILABLE = (
    "context deadline exceeded",
    "deadlineexceeded",
    "connection refused",
    "connection reset",
    "all subconns are in transientfailure",
    "transport is closing",
    "error reading server preface",
    "i/o timeout",
    "no route to host",
    "code = unavailable",
)
_NOT_FOUND = ("member not found",)
_ERROR_LINE = re.compile(r"^Error:\s*(.*)$", re.MULTILINE)


def tool_env() -> dict[str, str]:
    """The daemon's environment without ETCDCTL_* (etcdctl refuses a variable shadowed by a flag)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"  # 3.3's etcdctl defaults to the v2 API
    return env


def classify(message: str) -> type[EtcdError]:
    low = message.lower()
    if any(s in low for s in _NOT_FOUND):
        return EtcdMemberNotFound
    if any(s in low for s in _TRANSIENT):
        return EtcdTransient
    if any(s in low for s in _UNAVAILABLE):
        return EtcdUnavailable
    return EtcdError


def _error_text(stderr: str) -> str:
    """etcdctl prints JSON log lines before its one-line "Error: ..." summary; keep the summary."""
    lines = _ERROR_LINE.findall(stderr)
    return "; ".join(lines) if lines else stderr.strip()[-2000:]


# Our deadline fires this long before the caller's, so that the caller gets our typed error.
_MARGIN = 0.2


def budget(default: float) -> float:
    """Seconds a call may take: `default`, or less when the caller's deadline
    (`trio.fail_after` / `move_on_after` around the call) comes sooner."""
    remaining = trio.current_effective_deadline() - trio.current_time()
    return max(0.01, min(default, remaining - _MARGIN))


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """`trio.fail_after`, raising EtcdTimeout (an EtcdUnavailable) instead of TooSlowError."""
    try:
        with trio.fail_after(seconds):
            yield
    except trio.TooSlowError:
        raise EtcdTimeout(f"{what}: no answer within {seconds:.1f} s") from None


async def run_tool(cmd: Sequence[str], what: str) -> str:
    """Run a tool to completion; return stdout or raise a typed EtcdError. Callers bound it with
    `deadline` (on cancellation trio kills the tool)."""
    try:
        result = await trio.run_process(
            list(cmd), capture_stdout=True, capture_stderr=True, check=False, env=tool_env()
        )
    except OSError as e:
        raise EtcdError(f"{what}: cannot run {cmd[0]}: {e}") from e
    if result.returncode != 0:
        text = _error_text(result.stderr.decode(errors="replace")) or f"exit code {result.returncode}"
        raise classify(text)(f"{what}: {text}")
    return result.stdout.decode(errors="surrogateescape")


def go_duration(seconds: float) -> str:
    return f"{max(seconds, 0.001):.3f}s"
