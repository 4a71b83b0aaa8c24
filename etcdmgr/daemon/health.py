"""Is this daemon alive, and is its etcd member ready for clients? (/healthz, /readyz, systemd)

Alive means the event loop runs and the peer API answers: a Ping to itself, through the same
client, TLS and handler its peers use. The control loop is not part of it: a cycle stuck on a
hung store is no reason to restart the daemon and its etcd (it shows in /readyz and the metrics).
Ready means the member serves on its client URLs: not quarantined, running, healthy.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from etcdmgr.model.tls import ClientTLS
from etcdmgr.node.own_health import member_healthy
from etcdmgr.node.service import NodeService
from etcdmgr.peer.calls import PingArgs
from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.methods import PING
from etcdmgr.peer.rpc_client import PeerCaller

ALIVE_WITHIN = 3.0  # seconds for the peer API to answer this daemon's own Ping


class Health:
    def __init__(
        self,
        node: NodeService,
        directory: PeerDirectory,
        caller: PeerCaller,
        etcd_tls: Callable[[], ClientTLS | None],
    ) -> None:
        self.node = node
        self.directory = directory
        self.caller = caller
        self.etcd_tls = etcd_tls  # read per probe: the certificate is renewed while running

    async def not_alive(self) -> str | None:
        """Why the daemon is not alive, or None."""
        ping = PingArgs(endpoints=self.directory.my_endpoints).to_wire()
        try:
            with trio.fail_after(ALIVE_WITHIN):
                await self.caller.call(self.directory.me, PING, ping, timeout=ALIVE_WITHIN)
        except trio.TooSlowError:
            return f"the peer API did not answer within {ALIVE_WITHIN:g}s"
        except Exception as e:  # whatever the failure, the answer is the same: not alive
            return f"the peer API does not answer: {e}"
        return None

    def member_state(self) -> str:
        """idle (no member here), quarantined, stopped or running."""
        state = self.node.state
        if state is None:
            return "idle"
        if state.quarantined:
            return "quarantined"
        return "running" if self.node.etcd_running() else "stopped"

    def member_problem(self) -> str | None:
        """Why this node's member cannot serve clients, from what the node knows; None if it may."""
        match self.member_state():
            case "idle":
                return f"no etcd member on this node ({self.node.state_problem or 'idle'})"
            case "quarantined":
                return "etcd member is quarantined (serving only on the quarantine client URLs)"
            case "stopped":
                return "etcd is not running"
        return None

    async def not_ready(self) -> str | None:
        """Why this node's member does not serve clients, or None."""
        problem = self.member_problem()
        if problem is not None:
            return problem
        unhealthy_at = await member_healthy(self.node.me.client_urls, self.etcd_tls())
        return None if unhealthy_at is None else f"etcd does not answer healthy at {unhealthy_at}"
