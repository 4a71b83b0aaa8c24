"""Calls to a peer by id: endpoints from the directory, the leader's token on every call."""

from __future__ import annotations

from typing import Any

from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.errors import PeerUnreachable
from etcdmgr.peer.transport import PeerClient


class PeerCaller:
    def __init__(self, client: PeerClient, directory: PeerDirectory) -> None:
        self.client = client
        self.directory = directory
        self.token: str | None = None  # set while this node leads

    async def call(self, peer_id: str, method: str, args: dict[str, Any], *, timeout: float = 5.0) -> Any:
        endpoints = self.directory.endpoints_of(peer_id)
        if not endpoints:
            raise PeerUnreachable(f"no known address for peer {peer_id}")
        error: PeerUnreachable | None = None
        for endpoint in endpoints:
            try:
                return await self.client.call(
                    endpoint, method, args, expect_peer_id=peer_id, token=self.token, timeout=timeout
                )
            except PeerUnreachable as e:
                error = e
        assert error is not None
        raise error
