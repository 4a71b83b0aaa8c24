"""/healthz and /readyz reasons: alive is the peer API answering its own daemon; ready is a member
that serves clients."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import trio

from etcdmgr.daemon.health import ALIVE_WITHIN, Health
from etcdmgr.model import PeerEndpoint
from etcdmgr.model.ids import PeerId
from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.errors import PeerUnreachable


class Caller:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str]] = []

    async def call(self, peer_id: str, method: str, args: dict[str, Any], *, timeout: float) -> Any:
        self.calls.append((peer_id, method))
        if self.answer == "refused":
            raise PeerUnreachable("connection refused")
        if self.answer == "hang":
            await trio.sleep_forever()
        return {"peerId": peer_id}


def health(caller: Caller, state: Any = None, running: bool = True, problem: str | None = None) -> Health:
    node = SimpleNamespace(state=state, etcd_running=lambda: running, state_problem=problem)
    directory = PeerDirectory(PeerId("me"), (PeerEndpoint("127.0.0.1", 8000),), 4.0)
    return Health(cast(Any, node), directory, cast(Any, caller), lambda: None)


async def test_alive_means_the_peer_api_answers_this_daemons_own_ping() -> None:
    caller = Caller("ok")
    assert await health(caller).not_alive() is None
    assert caller.calls == [("me", "Ping")]
    assert await health(Caller("refused")).not_alive() == "the peer API does not answer: connection refused"


async def test_a_peer_api_that_hangs_is_not_alive(autojump_clock: trio.abc.Clock) -> None:
    started = trio.current_time()
    assert await health(Caller("hang")).not_alive() == f"the peer API did not answer within {ALIVE_WITHIN:g}s"
    assert trio.current_time() - started == ALIVE_WITHIN


async def test_a_member_that_cannot_serve_clients_says_why() -> None:
    ok = Caller("ok")
    assert await health(ok).not_ready() == "no etcd member on this node (idle)"
    assert health(ok, problem="state file unreadable").member_problem() == (
        "no etcd member on this node (state file unreadable)"
    )
    quarantined = SimpleNamespace(quarantined=True)
    assert health(ok, quarantined).member_state() == "quarantined"
    assert "quarantined" in (await health(ok, quarantined).not_ready() or "")
    serving = SimpleNamespace(quarantined=False)
    assert await health(ok, serving, running=False).not_ready() == "etcd is not running"
    assert health(ok, serving).member_problem() is None
