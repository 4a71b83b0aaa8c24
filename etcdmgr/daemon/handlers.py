"""The server side of the peer API: checks cluster name, caller and token, then dispatches."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from etcdmgr.model import EtcdmgrError, EtcdNode, InvalidData
from etcdmgr.node.service import JoinPhase, NodeService
from etcdmgr.peer import methods
from etcdmgr.peer.codec import Request
from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.election import Follower, refusal
from etcdmgr.peer.errors import RpcError
from etcdmgr.peer.gossip import handle_ping

log = logging.getLogger(__name__)

Handler = Callable[[Request, "str | None"], Awaitable[Any]]


def _opt_bool(args: dict[str, Any], key: str) -> bool | None:
    value = args.get(key)
    if value is not None and not isinstance(value, bool):
        raise RpcError("bad-request", f"{key} should be a boolean")
    return value


def _str(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise RpcError("bad-request", f"{key} should be a non-empty string")
    return value


def _nodes(args: dict[str, Any]) -> list[EtcdNode]:
    raw = args.get("nodes") or []
    if not isinstance(raw, list):
        raise RpcError("bad-request", "nodes should be a list")
    return [EtcdNode.from_wire(n) for n in raw]


def make_handler(
    cluster_name: str, directory: PeerDirectory, follower: Follower, node: NodeService
) -> Handler:
    async def handler(request: Request, caller_id: str | None) -> Any:
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
        if caller_id is not None and caller_id != request.sender:
            raise RpcError("bad-caller", f"certificate names {caller_id}, request says {request.sender}")
        if request.method in methods.MUTATING:
            problem = follower.token_problem(request.token)
            if problem is not None or request.sender != follower.leader_id:
                log.warning(
                    "refused %s from %s: %s",
                    request.method,
                    request.sender,
                    problem or f"following {follower.leader_id}",
                )
                raise RpcError("stale-token", problem or f"this node follows leader {follower.leader_id}")
        try:
            return await _dispatch(request, node, directory, follower, cluster_name)
        except RpcError:
            raise
        except InvalidData as e:
            raise RpcError("bad-request", str(e)) from None
        except EtcdmgrError as e:
            raise RpcError("failed", str(e)) from None

    return handler


async def _dispatch(
    request: Request, node: NodeService, directory: PeerDirectory, follower: Follower, cluster_name: str
) -> Any:
    args = request.args
    match request.method:
        case methods.PING:
            return handle_ping(directory, request.sender, args)
        case methods.GET_INFO:
            return (await node.info(cluster_name)).to_wire()
        case methods.LEADER_NOTIFICATION:
            leader, token = _str(args, "leaderId"), _str(args, "token")
            if leader != request.sender:
                raise RpcError("bad-request", "a leader notification must come from the leader")
            view = [v for v in args.get("view") or [] if isinstance(v, str)]
            reason = refusal(node.peer_id, directory.healthy(), leader, view)
            if reason is None:
                follower.accept(leader, token)
            return {"accepted": reason is None, "reason": reason or ""}
        case methods.JOIN_CLUSTER:
            try:
                phase = JoinPhase(_str(args, "phase"))
            except ValueError:
                raise RpcError("bad-request", f"unknown phase {args.get('phase')!r}") from None
            nodes = _nodes(args)
            await node.join_cluster(
                phase,
                _str(args, "clusterToken"),
                nodes,
                str(args.get("etcdVersion") or ""),
                bool(args.get("quarantined")),
            )
            return {}
        case methods.RECONFIGURE:
            version = args.get("etcdVersion")
            await node.reconfigure(
                _opt_bool(args, "quarantined"), version if isinstance(version, str) else None
            )
            return {}
        case methods.DO_RESTORE:
            nodes = _nodes(args)
            await node.restore_backup(
                _str(args, "backup"), _str(args, "clusterToken"), nodes, _str(args, "etcdVersion")
            )
            return {}
        case methods.STOP_ETCD:
            await node.stop_etcd()
            return {}
    raise RpcError("unknown-method", f"no method {request.method!r}")
