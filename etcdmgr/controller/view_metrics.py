"""What one cycle's view tells the metrics (ops/metrics.py): etcd's members and the spec's count."""

from __future__ import annotations

from etcdmgr.controller.view import ClusterView
from etcdmgr.ops import metrics
from etcdmgr.ops.metrics import MemberCounts


def record_view(view: ClusterView) -> None:
    members = None
    if view.members is not None:
        voting = [m for m in view.members if not m.is_learner]
        members = MemberCounts(
            healthy=sum(m.healthy for m in voting),
            unhealthy=sum(not m.healthy for m in voting),
            learners=len(view.members) - len(voting),
        )
    metrics.cluster_seen(members, view.spec.member_count if view.spec else None)
