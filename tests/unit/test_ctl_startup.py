"""ctl starts quickly: a command that only reads or writes a folder store runs without an event
loop and never imports trio (importing it takes longer than the command); store calls keep their
deadline there too."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trio

from etcdmgr.store.deadline import in_thread, in_trio_run
from etcdmgr.store.errors import StoreError

ROOT = Path(__file__).resolve().parents[2]


def imported_by(*argv: str) -> dict[str, object]:
    """Run `etcdmgr ctl ARGV` in a fresh interpreter; its exit code and the modules it loaded."""
    script = (
        "import json, sys\n"
        "from etcdmgr.cli.main import main\n"
        f"rc = main({['ctl', *argv]!r})\n"
        "print(json.dumps({'rc': rc, 'modules': sorted(sys.modules)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "command",
    [
        ["--member-count=1", "--etcd-version=3.5.30", "configure-cluster"],
        ["get"],
        ["-o", "json", "get"],
        ["list-commands"],
        ["list-backups"],
        ["backup-now"],
    ],
)
def test_store_only_commands_on_a_folder_run_without_trio(tmp_path: Path, command: list[str]) -> None:
    store = f"--backup-store=file://{tmp_path}"
    if command[-1] != "configure-cluster":
        imported_by(store, "--member-count=1", "--etcd-version=3.5.30", "configure-cluster")
    result = imported_by(store, *command)
    assert result["rc"] == 0
    modules = result["modules"]
    assert isinstance(modules, list)
    loaded = {m.split(".")[0] for m in modules}
    assert "trio" not in loaded, command
    if command[-1] != "configure-cluster":  # it looks for installed etcd versions
        assert not {"platform", "secrets", "subprocess"} & set(modules), "nothing the command does not use"


def test_waiting_commands_still_run_under_trio(tmp_path: Path) -> None:
    store = f"--backup-store=file://{tmp_path}"
    imported_by(store, "--member-count=1", "--etcd-version=3.5.30", "configure-cluster")
    result = imported_by(store, "--timeout=1s", "backup-now", "--wait")
    assert result["rc"] == 1  # no leader takes it
    assert "trio" in {m.split(".")[0] for m in result["modules"]}  # type: ignore[union-attr]


def too_slow(limit: float) -> StoreError:
    return StoreError(f"no answer within {limit:g}s")


def limiter() -> trio.CapacityLimiter:
    raise AssertionError("no trio limiter outside a trio run")


def drive(coro: object) -> object:
    """What ctl does: run a coroutine that must never suspend."""
    try:
        coro.send(None)  # type: ignore[attr-defined]
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine suspended")


def test_outside_trio_a_store_call_blocks_in_a_thread_with_its_deadline() -> None:
    assert not in_trio_run()
    assert drive(in_thread(limiter, 1, too_slow, lambda x: x * 2, 21)) == 42
    with pytest.raises(ZeroDivisionError):
        drive(in_thread(limiter, 1, too_slow, lambda: 1 / 0))
    hung = threading.Event()
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"no answer within 0\.2s"):
        drive(in_thread(limiter, 0.2, too_slow, hung.wait))
    assert time.monotonic() - started < 2, "a hung call is abandoned at its deadline"
    hung.set()


async def test_under_trio_a_store_call_uses_trio_threads() -> None:
    assert in_trio_run()
    threads = trio.CapacityLimiter(1)
    assert (
        await in_thread(lambda: threads, 1, too_slow, threading.current_thread)
        is not threading.current_thread()
    )
    with pytest.raises(StoreError, match=r"no answer within 0\.1s"):
        await in_thread(lambda: threads, 0.1, too_slow, time.sleep, 1)
