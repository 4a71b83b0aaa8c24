"""Calls to a peer by id: endpoints from the directory; the leader's token on every call, and
the next number of its term on every mutating call."""

from __future__ import annotations

from typing import Any

from etcdmgr.peer import methods
from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.election import Term
from etcdmgr.peer.errors import PeerUnreachable
from etcdmgr.peer.transport import PeerClient


class PeerCaller:
    def __init__(self, client: PeerClient, directory: PeerDirectory) -> None:
        self.client = client
        self.directory = directory
        self.term: Term | None = None  # set while this node leads

    async def call(self, peer_id: str, method: str, args: dict[str, Any], *, timeout: float = 5.0) -> Any:
        endpoints = self.directory.endpoints_of(peer_id)
        if not endpoints:
            raise PeerUnreachable(f"no known address for peer {peer_id}")
        term = self.term
        seq = term.take() if term is not None and method in methods.MUTATING else None
        error: PeerUnreachable | None = None
        for endpoint in endpoints:
            try:
                return await self.client.call(
                    endpoint,
                    method,
                    args,
                    expect_peer_id=peer_id,
                    token=term.token if term is not None else None,
                    seq=seq,
                    timeout=timeout,
                )
            except PeerUnreachable as e:
                error = e
        if term is not None and seq is not None:
            term.give_up(seq)  # it may still arrive: the node must refuse it then
        assert error is not None
        raise error
