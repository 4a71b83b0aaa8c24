"""Typed calls from the leader to a node's service (the client side of the node RPCs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from etcdmgr.model import EtcdNode, InvalidData, PeerInfo
from etcdmgr.peer import methods
from etcdmgr.peer.rpc_client import PeerCaller

# Starting or restarting etcd includes stopping the old one, which can take 10-20 s without quorum.
SLOW_CALL = 40.0


class NodeApi:
    def __init__(self, caller: PeerCaller, timeout: float = 5.0) -> None:
        self.caller = caller
        self.timeout = timeout

    async def get_info(self, peer_id: str) -> PeerInfo:
        info = PeerInfo.from_wire(await self.caller.call(peer_id, methods.GET_INFO, {}, timeout=self.timeout))
        if info.peer_id != peer_id:
            raise InvalidData(f"peer {peer_id} answered GetInfo as {info.peer_id}")
        return info

    async def notify_leader(
        self, peer_id: str, leader_id: str, token: str, view: Sequence[str], *, seq_floor: int
    ) -> tuple[bool, str]:
        args = {"leaderId": leader_id, "token": token, "view": list(view), "seqFloor": seq_floor}
        result: dict[str, Any] = await self.caller.call(
            peer_id, methods.LEADER_NOTIFICATION, args, timeout=self.timeout
        )
        return bool(result.get("accepted")), str(result.get("reason") or "")

    async def join_cluster(
        self,
        peer_id: str,
        phase: str,
        cluster_token: str,
        nodes: Sequence[EtcdNode],
        etcd_version: str,
        quarantined: bool,
    ) -> None:
        args = {
            "phase": phase,
            "clusterToken": cluster_token,
            "nodes": [n.to_wire() for n in nodes],
            "etcdVersion": etcd_version,
            "quarantined": quarantined,
        }
        await self.caller.call(peer_id, methods.JOIN_CLUSTER, args, timeout=SLOW_CALL)

    async def reconfigure(
        self, peer_id: str, *, quarantined: bool | None = None, etcd_version: str | None = None
    ) -> None:
        args = {"quarantined": quarantined, "etcdVersion": etcd_version}
        await self.caller.call(peer_id, methods.RECONFIGURE, args, timeout=SLOW_CALL)

    async def restore_backup(
        self, peer_id: str, backup: str, cluster_token: str, nodes: Sequence[EtcdNode], etcd_version: str
    ) -> None:
        args = {
            "backup": backup,
            "clusterToken": cluster_token,
            "nodes": [n.to_wire() for n in nodes],
            "etcdVersion": etcd_version,
        }
        await self.caller.call(peer_id, methods.DO_RESTORE, args, timeout=SLOW_CALL + 60)

    async def stop_etcd(self, peer_id: str) -> None:
        await self.caller.call(peer_id, methods.STOP_ETCD, {}, timeout=SLOW_CALL)
