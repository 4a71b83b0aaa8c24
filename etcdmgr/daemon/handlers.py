"""The server side of the peer API: checks cluster name, caller and token, then dispatches."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from etcdmgr.model import EtcdmgrError, InvalidData
from etcdmgr.model.ids import ClusterName, PeerId, parse_peer_id
from etcdmgr.node.drill import DrillRunner
from etcdmgr.node.service import NodeService
from etcdmgr.peer import methods
from etcdmgr.peer.calls import (
    DoDrillArgs,
    Done,
    DoRestoreArgs,
    GetInfoArgs,
    JoinClusterArgs,
    LeaderNotificationAnswer,
    LeaderNotificationArgs,
    PingArgs,
    ReconfigureArgs,
    StopEtcdArgs,
)
from etcdmgr.peer.codec import Request
from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.election import Follower, refusal
from etcdmgr.peer.errors import RpcError
from etcdmgr.peer.gossip import handle_ping

log = logging.getLogger(__name__)

Handler = Callable[[Request, "str | None"], Awaitable[Any]]


def make_handler(
    cluster_name: ClusterName,
    directory: PeerDirectory,
    follower: Follower,
    node: NodeService,
    drills: DrillRunner | None = None,
) -> Handler:
    async def handler(request: Request, caller_id: str | None) -> Any:
        # The server has already refused a sender other than the certificate's id (caller_id).
        if request.cluster != cluster_name:
            log.warning(
                "refused %s from %s: cluster %r is not ours (%r)",
                request.method,
                request.sender,
                request.cluster,
                cluster_name,
            )
            raise RpcError(
                "wrong-cluster", f"this node serves cluster {cluster_name!r}, not {request.cluster!r}"
            )
        if request.method in methods.MUTATING:
            problem = follower.admit(request.sender, request.token, request.seq)
            if problem is not None:
                log.warning("refused %s from %s: %s", request.method, request.sender, problem)
                raise RpcError("stale-token", problem)
        try:
            sender = parse_peer_id(request.sender, "request: field 'from'")
            if request.method == methods.DO_DRILL:
                if drills is None:
                    raise RpcError("unknown-method", "this node runs no drills")
                return drills.start(DoDrillArgs.from_wire(request.args)).to_wire()
            return await _dispatch(request, sender, node, directory, follower, cluster_name)
        except RpcError:
            raise
        except InvalidData as e:
            log.warning("refused %s from %s: %s", request.method, request.sender, e)
            raise RpcError("bad-request", str(e)) from None
        except EtcdmgrError as e:
            raise RpcError("failed", str(e)) from None

    return handler


async def _dispatch(
    request: Request,
    sender: PeerId,
    node: NodeService,
    directory: PeerDirectory,
    follower: Follower,
    cluster_name: ClusterName,
) -> Any:
    """Parse the arguments of the call (InvalidData when they do not parse), run it, answer."""
    args = request.args
    match request.method:
        case methods.PING:
            return handle_ping(directory, sender, PingArgs.from_wire(args)).to_wire()
        case methods.GET_INFO:
            GetInfoArgs.from_wire(args)
            return (await node.info(cluster_name)).to_wire()
        case methods.LEADER_NOTIFICATION:
            notice = LeaderNotificationArgs.from_wire(args)
            if notice.leader_id != sender:
                raise RpcError("bad-request", "a leader notification must come from the leader")
            unfit = directory.unfit()
            reason = refusal(node.peer_id, directory.healthy(), notice.leader_id, notice.view, unfit)
            if reason is None:
                follower.accept(notice.leader_id, notice.token, notice.seq_floor, trio.current_time())
            return LeaderNotificationAnswer(accepted=reason is None, reason=reason or "").to_wire()
        case methods.JOIN_CLUSTER:
            await node.join_cluster(JoinClusterArgs.from_wire(args))
            return Done().to_wire()
        case methods.RECONFIGURE:
            await node.reconfigure(ReconfigureArgs.from_wire(args))
            return Done().to_wire()
        case methods.DO_RESTORE:
            await node.restore_backup(DoRestoreArgs.from_wire(args))
            return Done().to_wire()
        case methods.STOP_ETCD:
            StopEtcdArgs.from_wire(args)
            await node.stop_etcd()
            return Done().to_wire()
    raise RpcError("unknown-method", f"no method {request.method!r}")
