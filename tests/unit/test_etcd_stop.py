"""Stopping etcd: SIGTERM then SIGKILL after the grace; with no grace, SIGKILL at once."""

from __future__ import annotations

import signal

import pytest
import trio
import trio.testing

from etcdmgr.etcd.stop import terminate


class Proc:
    """A process that exits on the signals in `exits_on`."""

    def __init__(self, exits_on: set[signal.Signals]) -> None:
        self.exits_on = exits_on
        self.sent: list[signal.Signals] = []
        self.gone = trio.Event()

    def send(self, sig: signal.Signals) -> bool:
        self.sent.append(sig)
        if sig in self.exits_on:
            self.gone.set()
        return True

    async def exited(self) -> None:
        await self.gone.wait()


async def test_a_process_that_stops_on_sigterm_gets_no_sigkill(caplog: pytest.LogCaptureFixture) -> None:
    p = Proc({signal.SIGTERM})
    await terminate("etcd", p.send, p.exited, 5.0)
    assert p.sent == [signal.SIGTERM] and "killed" not in caplog.text


async def test_a_lingering_process_is_killed_after_the_grace(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    p = Proc({signal.SIGKILL})
    await terminate("etcd", p.send, p.exited, 5.0)
    assert p.sent == [signal.SIGTERM, signal.SIGKILL]
    assert "etcd ignored SIGTERM for 5.0 s; killed it" in caplog.text


async def test_no_grace_kills_at_once_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    p = Proc({signal.SIGKILL})
    await terminate("etcd", p.send, p.exited, 0.0)
    assert p.sent == [signal.SIGKILL] and "killed" not in caplog.text
