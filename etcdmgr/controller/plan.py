"""The planner: (what the leader saw) -> (one action, and why). Pure: no I/O, no clock.

Quorum rules (the only place they are enforced; docs/architecture.md lists them):
- create needs answering peers >= quorum(spec.member_count), and no peer may hold etcd state;
- lift quarantine needs healthy members >= quorum(spec.member_count);
- add needs healthy voting members >= quorum(voting members);
- remove needs healthy voting members left after it >= quorum(voting members left);
- a member is replaced (removed, then the add rule brings a new one) only when its node answers
  with an empty disk, or when it has been unhealthy for `replace_after` with no daemon behind it
  and an idle peer is waiting.
"""

from __future__ import annotations

from collections.abc import Iterable

from etcdmgr.controller.actions import (
    AddMember,
    CreateCluster,
    Decision,
    LiftQuarantine,
    LogicalVersionChange,
    MarkCreated,
    PromoteMember,
    RemoveMember,
    RestoreBackup,
    StartAddedMember,
    StopOrphan,
    TakeBackup,
    UpdatePeerURLs,
    UpgradeMember,
    Wait,
)
from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.etcd.versions import in_place_upgrade_ok, resolve_version, supports_learners
from etcdmgr.model import ClusterSpec, PeerInfo

ZERO_MEMBERS = "etcd has 0 members registered; must issue restore-backup command to proceed"
NO_SPEC = "no cluster spec set - must seed new cluster"


def quorum(n: int) -> int:
    return n // 2 + 1


def _names(ids: Iterable[str]) -> str:
    return ", ".join(sorted(ids)) or "none"


def plan(view: ClusterView) -> Decision:
    if view.spec is None:
        return Decision(Wait(), view.spec_problem or NO_SPEC)
    spec = view.spec
    with_state = {pid: info for pid, info in view.peers.items() if info.etcd_state is not None}

    if view.commands and view.commands[0].restore_backup is not None:
        return _plan_restore(view)
    if not view.created:
        return _plan_create(view, spec, with_state)
    if view.members is None:
        if not with_state:
            return Decision(Wait(), ZERO_MEMBERS)
        return Decision(
            Wait(),
            f"cannot list etcd members ({view.members_problem or 'no member answered'}); "
            f"peers with etcd state: {_names(with_state)}; waiting for a quorum of them",
        )
    return _plan_running(view, spec, view.members, with_state)


def _runnable(spec: ClusterSpec, peers: dict[str, PeerInfo]) -> tuple[list[str], str]:
    """Peers that can run the spec's version (exactly or the same minor), and what the rest lack."""
    able = [
        pid
        for pid, info in sorted(peers.items())
        if resolve_version(spec.etcd_version, list(info.installed_versions))[0]
    ]
    unable = sorted(set(peers) - set(able))
    note = ""
    if unable:
        installed = sorted({v for pid in unable for v in peers[pid].installed_versions})
        note = f"; peers without etcd {spec.etcd_version}: {_names(unable)} (they have: {', '.join(installed) or 'none'})"
    return able, note


def _choose(spec: ClusterSpec, peers: dict[str, PeerInfo]) -> tuple[tuple[str, ...], str]:
    """The peers a new cluster of `spec` starts on (lowest ids that can run its version), or ()
    and why not: a quorum of the spec must be able to."""
    able, note = _runnable(spec, peers)
    need = quorum(spec.member_count)
    if len(able) < need:
        return (
            (),
            f"{len(able)} peers can run etcd {spec.etcd_version}, need {need} of {spec.member_count}{note}",
        )
    return tuple(able[: spec.member_count]), ""


def _plan_create(view: ClusterView, spec: ClusterSpec, with_state: dict[str, PeerInfo]) -> Decision:
    if with_state or view.members:
        return Decision(
            MarkCreated(),
            f"no created marker, but etcd state exists on {_names(with_state)}: "
            "recording the cluster as created instead of creating a second one",
        )
    chosen, why_not = _choose(spec, view.peers)
    if not chosen:
        return Decision(Wait(), f"cluster not created yet: {why_not}")
    return Decision(
        CreateCluster(chosen, spec.etcd_version),
        f"creating a new cluster of {len(chosen)} (spec {spec.member_count}, etcd {spec.etcd_version}) "
        f"on peers {_names(chosen)}",
    )


def _plan_restore(view: ClusterView) -> Decision:
    cmd = view.commands[0]
    assert cmd.restore_backup is not None
    chosen, why_not = _choose(cmd.restore_backup.cluster_spec, view.peers)
    if not chosen:
        return Decision(Wait(), f"restore-backup {cmd.restore_backup.backup} waits: {why_not}")
    return Decision(
        RestoreBackup(cmd, chosen),
        f"restore-backup command {cmd.name}: restoring {cmd.restore_backup.backup} into a new cluster "
        f"of {len(chosen)} on {_names(chosen)}",
    )


def _plan_running(
    view: ClusterView, spec: ClusterSpec, members: tuple[MemberView, ...], with_state: dict[str, PeerInfo]
) -> Decision:
    voting = [m for m in members if not m.is_learner]
    healthy_voting = [m for m in voting if m.healthy]
    # A member that has not published its name yet is matched to its node by peer URL: it is
    # starting (e.g. just restored), not an orphan.
    names = {m.name for m in members if m.name} | {
        pid
        for pid, info in with_state.items()
        for m in members
        if not m.name and set(m.peer_urls) & set(info.node.peer_urls)
    }
    idle = sorted(pid for pid, info in view.peers.items() if info.etcd_state is None and pid not in names)

    quarantined = tuple(
        sorted(pid for pid, info in with_state.items() if info.etcd_state and info.etcd_state.quarantined)
    )
    if quarantined:
        if len(healthy_voting) >= quorum(min(spec.member_count, len(voting))):
            return Decision(
                LiftQuarantine(quarantined),
                f"{len(healthy_voting)} of {len(voting)} members healthy: lifting quarantine on {_names(quarantined)}",
            )
        return Decision(
            Wait(), f"quarantined cluster not healthy yet: {len(healthy_voting)} of {len(voting)} healthy"
        )

    for m in members:
        if not m.name:
            match = [pid for pid in idle if set(view.peers[pid].node.peer_urls) & set(m.peer_urls)]
            if match:
                return Decision(
                    StartAddedMember(match[0]),
                    f"member {m.member_id:x} was added but never started: starting it on {match[0]}",
                )

    for m in members:
        if m.is_learner:
            return Decision(
                PromoteMember(m.member_id, m.name),
                f"learner {m.name or m.member_id} joined: promoting it to a voting member",
            )

    for pid in sorted(with_state):
        if pid not in names:
            return Decision(
                StopOrphan(pid), f"peer {pid} runs etcd but is no member of the cluster: stopping it"
            )

    for m in members:
        node = view.peers[m.name].node if m.name in with_state else None
        if node is not None and m.peer_urls and set(m.peer_urls) != set(node.peer_urls):
            others_healthy = len([v for v in healthy_voting if v.member_id != m.member_id])
            if others_healthy < quorum(len(voting)):
                return Decision(
                    Wait(),
                    f"member {m.name} moves to peer URLs {', '.join(node.peer_urls)} once the others are healthy",
                )
            return Decision(
                UpdatePeerURLs(m.member_id, m.name, node.peer_urls),
                f"member {m.name} is registered with peer URLs {', '.join(m.peer_urls)} but its node now serves "
                f"{', '.join(node.peer_urls)} (e.g. TLS was enabled): updating the member",
            )

    # A node that answers with an empty disk under a member's name lost its data: its member
    # can never come back, so remove it at once; the add rule then re-adds the node. A node that
    # cannot read its state may still hold the data: only the replace-after grace applies to it.
    for m in members:
        answered = view.peers.get(m.name)
        if m.name and answered is not None and answered.etcd_state is None:
            if answered.state_problem is None:
                return _remove(
                    m, voting, healthy_voting, None, f"node {m.name} came back with an empty data dir"
                )
            if m.healthy:
                continue
            if m.unhealthy_for < view.replace_after:
                return Decision(
                    Wait(),
                    f"node {m.name} cannot read its state ({answered.state_problem}): its member is kept, "
                    f"and replaced only if still unhealthy after {view.replace_after:.0f}s",
                )
            return _remove(
                m,
                voting,
                healthy_voting,
                None,
                f"node {m.name} cannot read its state and its member has been unhealthy for {m.unhealthy_for:.0f}s",
            )

    if len(members) < spec.member_count:
        if not idle:
            return Decision(Wait(), f"{len(members)} of {spec.member_count} members; no idle peer to add")
        if len(healthy_voting) < quorum(len(voting)):
            return Decision(
                Wait(),
                f"{len(members)} of {spec.member_count} members but only {len(healthy_voting)} healthy: not adding yet",
            )
        learner = supports_learners(_cluster_version(with_state, spec))
        return Decision(
            AddMember(idle[0], learner),
            f"{len(members)} of {spec.member_count} members: adding peer {idle[0]}{' as a learner' if learner else ''}",
        )

    if len(members) > spec.member_count:
        # Unhealthy first, then members without a daemon, then the highest name: predictable.
        victim = sorted(members, key=lambda m: (not m.healthy, m.name not in view.peers, m.name))[-1]
        stop = victim.name if victim.name in with_state else None
        return _remove(
            victim,
            voting,
            healthy_voting,
            stop,
            f"{len(members)} members but the spec wants {spec.member_count}",
        )

    dead = [
        m
        for m in members
        if not m.healthy and m.name not in view.peers and m.unhealthy_for >= view.replace_after
    ]
    if dead and idle:
        return _remove(
            dead[0],
            voting,
            healthy_voting,
            None,
            f"member {dead[0].name} unhealthy for {dead[0].unhealthy_for:.0f}s with no daemon; idle peer {idle[0]} can replace it",
        )

    if view.backup_due and healthy_voting:
        return Decision(TakeBackup(), "backup interval elapsed")

    behind = sorted(
        pid
        for pid, info in with_state.items()
        if info.etcd_state and info.etcd_state.etcd_version != spec.etcd_version
    )
    if behind:
        return _plan_version_change(view, spec, members, with_state, behind)

    unhealthy = [m.name or str(m.member_id) for m in members if not m.healthy]
    if unhealthy:
        return Decision(Wait(), f"{len(members)} members, unhealthy: {', '.join(unhealthy)}; waiting")
    return Decision(Wait(), f"cluster converged: {len(members)} of {spec.member_count} members healthy")


def _plan_version_change(
    view: ClusterView,
    spec: ClusterSpec,
    members: tuple[MemberView, ...],
    with_state: dict[str, PeerInfo],
    behind: list[str],
) -> Decision:
    """In place one member at a time where etcd allows it, else logically; only while every
    member is healthy, the count is as specified, and every member's host has the version."""
    pid = behind[0]
    state = with_state[pid].etcd_state
    assert state is not None
    able, note = _runnable(spec, with_state)
    if set(with_state) - set(able):
        return Decision(
            Wait(), f"cannot change etcd version to {spec.etcd_version}{note}; leaving the cluster as it is"
        )
    unhealthy = [m.name or str(m.member_id) for m in members if not m.healthy]
    if unhealthy or len(members) != spec.member_count:
        return Decision(
            Wait(), f"version change to {spec.etcd_version} waits for {spec.member_count} healthy members"
        )
    if not in_place_upgrade_ok(state.etcd_version, spec.etcd_version):
        return Decision(
            LogicalVersionChange(tuple(sorted(with_state)), spec.etcd_version),
            f"etcd {state.etcd_version} -> {spec.etcd_version} cannot be done in place (only a patch change or "
            "one minor up can): quarantine, back up, restore the backup on the new version",
        )
    return Decision(
        UpgradeMember(pid, spec.etcd_version),
        f"member {pid} runs etcd {state.etcd_version}, the spec wants {spec.etcd_version}: restarting it in place",
    )


def _remove(
    m: MemberView, voting: list[MemberView], healthy_voting: list[MemberView], stop: str | None, why: str
) -> Decision:
    left = len(voting) - (0 if m.is_learner else 1)
    healthy_left = len(healthy_voting) - (1 if m.healthy and not m.is_learner else 0)
    if left < 1 or healthy_left < quorum(left):
        return Decision(
            Wait(),
            f"{why}, but removing {m.name or m.member_id} would leave {healthy_left} healthy of {left}: waiting",
        )
    return Decision(
        RemoveMember(m.member_id, m.name, stop), f"{why}: removing member {m.name or m.member_id}"
    )


def _cluster_version(with_state: dict[str, PeerInfo], spec: ClusterSpec) -> str:
    versions = sorted(info.etcd_state.etcd_version for info in with_state.values() if info.etcd_state)
    return versions[0] if versions else spec.etcd_version
