"""What the planner's rules share: facts derived once from a view, and checks of its values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from etcdmgr.controller.view import ClusterView, MemberView
from etcdmgr.etcd.versions import resolve_version, untested_refusal, version_key
from etcdmgr.model import ClusterSpec, InvalidData, PeerInfo
from etcdmgr.model.cluster import parse_version
from etcdmgr.model.values import EtcdVersion


def quorum(n: int) -> int:
    return n // 2 + 1


@dataclass(frozen=True)
class Facts:
    """The view, and what several rules derive from it (computed once per plan)."""

    view: ClusterView
    spec: ClusterSpec  # the view's spec; when there is none an empty one, which `no_spec` stops at
    members: tuple[MemberView, ...]  # () while none are listed (`members_unlisted` stops there)
    with_state: Mapping[str, PeerInfo]  # peers that hold etcd state
    voting: tuple[MemberView, ...]
    healthy_voting: tuple[MemberView, ...]
    unhealthy: tuple[str, ...]  # names (or ids) of unhealthy members
    names: frozenset[str]  # member names, and the peers of members not named yet (by peer URL)
    idle: tuple[str, ...]  # peers with neither etcd state nor a member: the ones to add
    # Idle peers that can run the version a joining member gets; first those whose last etcd
    # did not keep failing (a crash-looping member's node becomes idle once it is removed).
    joinable: tuple[str, ...]
    # Joinable peers that are simply empty: no etcd failing, no state file that could not be read.
    fresh: tuple[str, ...]

    @classmethod
    def of(cls, view: ClusterView) -> Facts:
        members = view.members or ()
        with_state = {pid: info for pid, info in view.peers.items() if info.etcd_state is not None}
        voting = tuple(m for m in members if not m.is_learner)
        # A member that has not published its name yet is matched to its node by peer URL: it is
        # starting (e.g. just restored), not an orphan.
        names = frozenset(m.name for m in members if m.name) | {
            pid
            for pid, info in with_state.items()
            for m in members
            if not m.name and set(m.peer_urls) & set(info.node.peer_urls)
        }
        idle = tuple(sorted(pid for pid in view.peers if pid not in with_state and pid not in names))
        joinable = tuple(
            sorted(
                (pid for pid in idle if _can_run(view.peers[pid], _join_versions(view, with_state))),
                key=lambda pid: (view.peers[pid].etcd_problem is not None, pid),
            )
        )
        return cls(
            view=view,
            spec=view.spec or ClusterSpec(0, EtcdVersion("")),
            members=members,
            with_state=with_state,
            voting=voting,
            healthy_voting=tuple(m for m in voting if m.healthy),
            unhealthy=tuple(m.name or str(m.member_id) for m in members if not m.healthy),
            names=names,
            idle=idle,
            joinable=joinable,
            fresh=tuple(
                pid
                for pid in joinable
                if view.peers[pid].etcd_problem is None and view.peers[pid].state_problem is None
            ),
        )

    def running_version(self, pid: str) -> str:
        state = self.with_state[pid].etcd_state
        return state.etcd_version if state else ""

    def cluster_version(self) -> str:
        """The oldest version a member runs (it decides whether learners exist); else the spec's."""
        versions = [self.running_version(pid) for pid in self.with_state]
        return min(versions, key=version_key) if versions else self.spec.etcd_version


def _join_versions(view: ClusterView, with_state: Mapping[str, PeerInfo]) -> set[str]:
    """The versions a joining member may be given: those the members run (the spec's before any)."""
    running: set[str] = {info.etcd_state.etcd_version for info in with_state.values() if info.etcd_state}
    return running or ({view.spec.etcd_version} if view.spec else set())


def _can_run(info: PeerInfo, versions: Iterable[str]) -> bool:
    # A peer reporting versions that do not parse can run none (`bad_peer_data` waits on it).
    return peer_problem(info) is None and all(
        resolve_version(v, list(info.installed_versions))[0] for v in versions
    )


def addresses(urls: Iterable[str]) -> set[str]:
    """The host:port of each URL, whatever its scheme (a member moving to TLS keeps its address)."""
    return {urlsplit(u).netloc.lower() for u in urls}
def leader_successor(members: Iterable[MemberView], leaving: int) -> MemberView | None:
    """The member to hand etcd's leadership to before member `leaving` is removed: a healthy
    voting member that stays (the lowest name, so every leader picks the same), or None."""
    able = [m for m in members if m.member_id != leaving and m.healthy and not m.is_learner and m.client_urls]
    return min(able, key=lambda m: (m.name, m.member_id)) if able else None


def names(ids: Iterable[str]) -> str:
    return ", ".join(sorted(ids)) or "none"


def spec_problem(spec: ClusterSpec) -> str | None:
    """Why no daemon can carry out `spec`, or None."""
    try:
        spec.validate()
    except InvalidData as e:
        return str(e)
    return None


def peer_problem(info: PeerInfo) -> str | None:
    """What in a peer's answer no rule may act on (versions that are not X.Y.Z), or None."""
    installed = info.installed_versions
    if not isinstance(installed, tuple | list):
        return f"reports installed versions that are not a list: {_shown(installed)}"
    bad = [_shown(v) for v in installed if not _is_version(v)]
    if bad:
        return f"reports installed etcd versions that are not X.Y.Z: {', '.join(bad)}"
    if info.etcd_state is not None and not _is_version(info.etcd_state.etcd_version):
        return f"runs etcd of version {_shown(info.etcd_state.etcd_version)}, which is not X.Y.Z"
    return None


def runnable(spec: ClusterSpec, peers: Mapping[str, PeerInfo]) -> tuple[list[str], str]:
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
        note = f"; peers without etcd {spec.etcd_version}: {names(unable)} (they have: {', '.join(installed) or 'none'})"
        if refusal := untested_refusal(spec.etcd_version, installed_said=True):
            note += f"; {refusal}"
    return able, note


def choose(spec: ClusterSpec, peers: Mapping[str, PeerInfo]) -> tuple[tuple[str, ...], str]:
    """The peers a new cluster of `spec` starts on (lowest ids that can run its version), or ()
    and why not: a quorum of the spec must be able to."""
    able, note = runnable(spec, peers)
    need = quorum(spec.member_count)
    if len(able) < need:
        return (
            (),
            f"{len(able)} peers can run etcd {spec.etcd_version}, need {need} of {spec.member_count}{note}",
        )
    return tuple(able[: spec.member_count]), ""


def _is_version(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_version(value)
    except InvalidData:
        return False
    return True


def _shown(value: object) -> str:
    """A value a peer sent, quoted and cut short for a log line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
