"""The JoinCluster phases on a node.

PREPARE reserves an empty node for one cluster for PREPARE_TTL seconds; INITIAL_CLUSTER and
JOIN_EXISTING start it only under a current PREPARE for that cluster; CANCEL_PREPARE releases it.
A node that is a member already answers a repeated call as done and refuses any other cluster.
"""

from __future__ import annotations

import logging

from etcdmgr.model import EtcdCluster, EtcdState
from etcdmgr.model.ids import ClusterToken, PeerId
from etcdmgr.peer.calls import JoinClusterArgs, JoinPhase
from etcdmgr.peer.errors import RpcError

log = logging.getLogger(__name__)

PREPARE_TTL = 60.0


class JoinPhases:
    def __init__(self) -> None:
        self.prepared: tuple[ClusterToken, float] | None = None  # (cluster token, deadline)

    def admit(
        self, call: JoinClusterArgs, state: EtcdState | None, me: PeerId, now: float
    ) -> EtcdState | None:
        """The state to start etcd with for `call`, or None when there is nothing to start;
        RpcError when the call is refused. `state` is the node's, `now` a monotonic time."""
        if call.phase is JoinPhase.CANCEL_PREPARE:
            if self.prepared and self.prepared[0] == call.cluster_token:
                self.prepared = None
            return None
        if state is not None:
            if state.cluster.cluster_token == call.cluster_token:
                return None  # a repeated call: already done
            raise RpcError("busy", f"this node is already a member of cluster {state.cluster.cluster_token}")
        if call.phase is JoinPhase.PREPARE:
            self.prepared = (call.cluster_token, now + PREPARE_TTL)
            log.info("prepared to join cluster %s", call.cluster_token)
            return None
        if not self.prepared or self.prepared[0] != call.cluster_token or self.prepared[1] < now:
            raise RpcError("not-prepared", f"no current PREPARE for cluster {call.cluster_token}")
        self.prepared = None
        if me not in {n.name for n in call.nodes}:
            raise RpcError("bad-request", "this node is not among the cluster's nodes")
        return EtcdState(
            cluster=EtcdCluster(cluster_token=call.cluster_token, nodes=call.nodes),
            etcd_version=call.etcd_version,
            quarantined=call.quarantined,
            new_cluster=call.phase is JoinPhase.INITIAL_CLUSTER,
        )
