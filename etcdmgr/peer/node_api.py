"""Typed calls from the leader to a node's service (the client side of the node RPCs)."""

from __future__ import annotations

from etcdmgr.model import InvalidData, PeerInfo
from etcdmgr.peer import methods
from etcdmgr.peer.calls import (
    DoDrillAnswer,
    DoDrillArgs,
    Done,
    DoRestoreArgs,
    GetInfoArgs,
    JoinClusterArgs,
    LeaderNotificationAnswer,
    LeaderNotificationArgs,
    ReconfigureArgs,
    StopEtcdArgs,
)
from etcdmgr.peer.rpc_client import PeerCaller

# Starting or restarting etcd includes stopping the old one, which can take 10-20 s without quorum.
SLOW_CALL = 40.0


class NodeApi:
    def __init__(self, caller: PeerCaller, timeout: float = 5.0) -> None:
        self.caller = caller
        self.timeout = timeout

    async def get_info(self, peer_id: str) -> PeerInfo:
        answer = await self.caller.call(
            peer_id, methods.GET_INFO, GetInfoArgs().to_wire(), timeout=self.timeout
        )
        info = PeerInfo.from_wire(answer)
        if info.peer_id != peer_id:
            raise InvalidData(f"peer {peer_id} answered GetInfo as {info.peer_id}")
        return info

    async def notify_leader(self, peer_id: str, args: LeaderNotificationArgs) -> LeaderNotificationAnswer:
        answer = await self.caller.call(
            peer_id, methods.LEADER_NOTIFICATION, args.to_wire(), timeout=self.timeout
        )
        return LeaderNotificationAnswer.from_wire(answer)

    async def join_cluster(self, peer_id: str, args: JoinClusterArgs) -> None:
        Done.from_wire(
            await self.caller.call(peer_id, methods.JOIN_CLUSTER, args.to_wire(), timeout=SLOW_CALL)
        )

    async def reconfigure(self, peer_id: str, args: ReconfigureArgs) -> None:
        Done.from_wire(
            await self.caller.call(peer_id, methods.RECONFIGURE, args.to_wire(), timeout=SLOW_CALL)
        )

    async def restore_backup(self, peer_id: str, args: DoRestoreArgs) -> None:
        answer = await self.caller.call(peer_id, methods.DO_RESTORE, args.to_wire(), timeout=SLOW_CALL + 60)
        Done.from_wire(answer)

    async def stop_etcd(self, peer_id: str) -> None:
        answer = await self.caller.call(
            peer_id, methods.STOP_ETCD, StopEtcdArgs().to_wire(), timeout=SLOW_CALL
        )
        Done.from_wire(answer)

    async def do_drill(self, peer_id: str, args: DoDrillArgs) -> DoDrillAnswer:
        """Ask a node to drill a backup; it answers at once and drills on its own."""
        answer = await self.caller.call(peer_id, methods.DO_DRILL, args.to_wire(), timeout=self.timeout)
        return DoDrillAnswer.from_wire(answer)
