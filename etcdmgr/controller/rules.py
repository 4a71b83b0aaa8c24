"""The planner's rules: each `(facts) -> Decision | None`, its docstring the rule in one line.

A rule sees what the leader saw (`Facts`) and either decides or passes. The order they are
tried in, and so which rule wins, is `RULES` in controller/plan.py; each rule may rely on the
rules before it having passed (e.g. every rule after `members_unlisted` sees a listed membership).
Rules never raise on values from peers or the store: they wait and say why.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

from etcdmgr.controller.actions import (
    AddMember,
    CreateCluster,
    Decision,
    LiftQuarantine,
    LogicalVersionChange,
    MarkCreated,
    PromoteMember,
    RemoveMember,
    RestartMember,
    RestoreBackup,
    StartAddedMember,
    StopOrphan,
    TakeBackup,
    UpdatePeerURLs,
    UpgradeMember,
    Wait,
)
from etcdmgr.controller.facts import (
    Facts,
    addresses,
    choose,
    names,
    peer_problem,
    quorum,
    runnable,
    spec_problem,
)
from etcdmgr.controller.view import MemberView
from etcdmgr.etcd.versions import in_place_upgrade_ok, supports_learners

ZERO_MEMBERS = "etcd has 0 members registered; must issue restore-backup command to proceed"
NO_SPEC = "no cluster spec set - must seed new cluster"
FRESH_BACKUP = timedelta(minutes=1)  # a backup this young covers the next change too
CHANGE_AFTER_FAILURES = 3  # failed backups in a row after which a change may go ahead without one
RECENT_BACKUP = timedelta(hours=24)  # ... on a backup at most this old
BACKUPS_FAILING = "backups are failing (see the last 'backup failed' line)"


# -- The spec, the peers' data and the command queue ------------------------------------------


def no_spec(f: Facts) -> Decision | None:
    """No cluster spec (or an unreadable one) in the store: wait, changing nothing."""
    if f.view.spec is None:
        return Decision(Wait(), f.view.spec_problem or NO_SPEC)
    return None


def unusable_spec(f: Facts) -> Decision | None:
    """A spec no daemon can carry out (count below 1, version not 3.x.y): wait, changing nothing."""
    problem = spec_problem(f.spec)
    if problem:
        return Decision(
            Wait(), f"cluster spec cannot be used: {problem}; nothing will be changed until it is fixed"
        )
    return None


def bad_peer_data(f: Facts) -> Decision | None:
    """A peer reports an etcd version that is not X.Y.Z (installed or running): wait, trusting none."""
    for pid in sorted(f.view.peers):
        problem = peer_problem(f.view.peers[pid])
        if problem:
            return Decision(Wait(), f"peer {pid} {problem}; waiting until it reports valid data")
    return None


def unknown_command(f: Facts) -> Decision | None:
    """A queued command other than restore-backup heads the queue: wait until it is deleted."""
    cmd = f.view.commands[0] if f.view.commands else None
    if cmd is not None and cmd.restore_backup is None:
        return Decision(
            Wait(),
            f"queued command {cmd.name} is not a restore-backup (the only command there is); "
            f"remove it with `ctl delete-command {cmd.name}`",
        )
    return None


def restore(f: Facts) -> Decision | None:
    """A restore-backup command heads the queue: restore it on a quorum of its spec that has the version."""
    cmd = f.view.commands[0] if f.view.commands else None
    if cmd is None or cmd.restore_backup is None:
        return None
    backup, spec = cmd.restore_backup.backup, cmd.restore_backup.cluster_spec
    problem = spec_problem(spec) if backup else "it names no backup"
    if problem:
        return Decision(
            Wait(),
            f"restore-backup command {cmd.name} cannot be carried out: {problem}; "
            f"remove it with `ctl delete-command {cmd.name}`",
        )
    chosen, why_not = choose(spec, f.view.peers)
    if not chosen:
        return Decision(Wait(), f"restore-backup {backup} waits: {why_not}")
    return Decision(
        RestoreBackup(cmd, chosen),
        f"restore-backup command {cmd.name}: restoring {backup} into a new cluster "
        f"of {len(chosen)} on {names(chosen)}",
    )


# -- Before etcd runs --------------------------------------------------------------------------


def mark_created(f: Facts) -> Decision | None:
    """No created marker, but etcd state or members exist: record it as created, never create again."""
    if f.view.created or not (f.with_state or f.members):
        return None
    return Decision(
        MarkCreated(),
        f"no created marker, but etcd state exists on {names(f.with_state)}: "
        "recording the cluster as created instead of creating a second one",
    )


def create(f: Facts) -> Decision | None:
    """No created marker: create the cluster once a quorum of the spec has the version (lowest ids)."""
    if f.view.created:
        return None
    chosen, why_not = choose(f.spec, f.view.peers)
    if not chosen:
        return Decision(Wait(), f"cluster not created yet: {why_not}")
    return Decision(
        CreateCluster(chosen, f.spec.etcd_version),
        f"creating a new cluster of {len(chosen)} (spec {f.spec.member_count}, etcd {f.spec.etcd_version}) "
        f"on peers {names(chosen)}",
    )


def zero_members(f: Facts) -> Decision | None:
    """Created, but no member listed and a quorum of the spec's peers holds no etcd state: wait for a restore-backup command."""
    # A leader that hears fewer (cut off, its own peer API unreachable) cannot tell that the data is gone.
    if f.view.members is None and not f.with_state and len(f.view.peers) >= quorum(f.spec.member_count):
        return Decision(Wait(), ZERO_MEMBERS)
    return None


def members_unlisted(f: Facts) -> Decision | None:
    """No member could be listed, but peers hold etcd state: wait for a quorum of them."""
    if f.view.members is not None:
        return None
    return Decision(
        Wait(),
        f"cannot list etcd members ({f.view.members_problem or 'no member answered'}); "
        f"peers with etcd state: {names(f.with_state)}; waiting for a quorum of them",
    )


# -- A running cluster -------------------------------------------------------------------------


def duplicate_member_names(f: Facts) -> Decision | None:
    """Two members share a name (the rules below match members to peers by name): wait."""
    counts = Counter(m.name for m in f.members if m.name)
    twice = sorted(name for name, n in counts.items() if n > 1)
    if twice:
        return Decision(
            Wait(), f"etcd lists more than one member named {names(twice)}: remove the stale one by hand"
        )
    return None


def lift_quarantine(f: Facts) -> Decision | None:
    """Quarantined peers: while none serves clients, lift all at once when healthy voting >= quorum(min(spec, voting)); else one at a time, each while the others keep quorum."""
    quarantined = tuple(
        sorted(pid for pid, info in f.with_state.items() if info.etcd_state and info.etcd_state.quarantined)
    )
    if not quarantined:
        return None
    healthy, voting = len(f.healthy_voting), len(f.voting)
    if len(quarantined) == len(f.with_state):
        # No client uses the cluster (e.g. just restored): all restart together, so clients find
        # every member ready at once, and the moment without quorum is one nobody sees.
        if healthy >= quorum(min(f.spec.member_count, voting)):
            return Decision(
                LiftQuarantine(quarantined),
                f"{healthy} of {voting} members healthy: lifting quarantine on {names(quarantined)} at once",
            )
        return Decision(Wait(), f"quarantined cluster not healthy yet: {healthy} of {voting} healthy")
    # Clients use the other members: a restart must never take their quorum away.
    pid = quarantined[0]
    others = len([m for m in f.healthy_voting if m.name != pid])
    if others >= quorum(voting):
        return Decision(
            LiftQuarantine((pid,)),
            f"{others} other members of {voting} healthy: lifting quarantine on {pid} (one at a time, "
            "clients use the others)",
        )
    return Decision(
        Wait(),
        f"quarantine on {pid} is lifted once the others keep quorum without it: {others} of {voting} healthy",
    )


def start_added_member(f: Facts) -> Decision | None:
    """A member added but never started, whose peer URLs an idle peer serves: start it there."""
    for m in f.members:
        if not m.name:
            match = [pid for pid in f.idle if set(f.view.peers[pid].node.peer_urls) & set(m.peer_urls)]
            if match:
                return Decision(
                    StartAddedMember(match[0]),
                    f"member {m.member_id:x} was added but never started: starting it on {match[0]}",
                )
    return None


def promote_learner(f: Facts) -> Decision | None:
    """A learner member: promote it, retried with backoff; one not promoted after failing for replace-after is removed (its node joins again)."""
    for m in f.members:
        if not m.is_learner:
            continue
        p, name = m.promotion, m.name or f"{m.member_id:x}"
        if p.error and p.failing_for >= f.view.replace_after:
            # A learner can stay out of sync for good (e.g. its etcd hangs): a fresh join can work.
            # One that never started publishes no name: its node is known by its peer URLs.
            stop = next(
                (
                    pid
                    for pid, info in sorted(f.with_state.items())
                    if pid == m.name or (not m.name and set(info.node.peer_urls) & set(m.peer_urls))
                ),
                None,
            )
            why = f"learner {name} could not be promoted for {p.failing_for:.0f}s ({p.error[:200]})"
            return _remove(f, m, stop, f"{why}; its node joins again afresh")
        if p.retry_in > 0:
            continue  # `learner_waits` says so once no other rule acts
        if p.error:
            return Decision(
                PromoteMember(m.member_id, m.name),
                f"retrying the promotion of learner {name}, failing for {p.failing_for:.0f}s: {p.error[:200]}",
            )
        return Decision(PromoteMember(m.member_id, m.name), f"learner {name} joined: promoting it to a voting member")
    return None


def stop_orphan(f: Facts) -> Decision | None:
    """A peer runs etcd but is no member of the cluster: stop it."""
    for pid in sorted(f.with_state):
        if pid not in f.names:
            return Decision(
                StopOrphan(pid), f"peer {pid} runs etcd but is no member of the cluster: stopping it"
            )
    return None


def update_peer_urls(f: Facts) -> Decision | None:
    """A member whose node now serves other peer URLs: update it while the others keep quorum."""
    for m in f.members:
        node = f.with_state[m.name].node if m.name in f.with_state else None
        if node is None or not m.peer_urls or set(m.peer_urls) == set(node.peer_urls):
            continue
        others_healthy = len([v for v in f.healthy_voting if v.member_id != m.member_id])
        if others_healthy < quorum(len(f.voting)):
            return Decision(
                Wait(),
                f"member {m.name} moves to peer URLs {', '.join(node.peer_urls)} once the others are healthy",
            )
        return Decision(
            UpdatePeerURLs(m.member_id, m.name, node.peer_urls),
            f"member {m.name} is registered with peer URLs {', '.join(m.peer_urls)} but its node now serves "
            f"{', '.join(node.peer_urls)} (e.g. TLS was enabled): updating the member",
        )
    return None


def replace_empty_disk(f: Facts) -> Decision | None:
    """A member whose node answers with an empty data dir: remove it at once (if quorum stays)."""
    # Its member can never come back: the data it held is gone. `add_member` then re-adds the node.
    for m in f.members:
        answered = f.view.peers.get(m.name)
        if m.name and answered is not None and answered.etcd_state is None and answered.state_problem is None:
            return _remove(f, m, None, f"node {m.name} came back with an empty data dir")
    return None


def replace_returned_host(f: Facts) -> Decision | None:
    """A member with no daemon, unhealthy, whose peer address an empty idle peer now serves (its host came back wiped, under a new id): remove it at once (if quorum stays)."""
    # Only that member's etcd could listen there, and the new node's etcd is to bind it: the
    # member is gone for good, so waiting for --replace-after would gain nothing.
    for m in f.members:
        if m.healthy or not m.name or m.name in f.view.peers:
            continue
        for pid in f.fresh:
            shared = addresses(m.peer_urls) & addresses(f.view.peers[pid].node.peer_urls)
            if shared:
                why = (
                    f"member {m.name} has no daemon and peer {pid} answers at its address "
                    f"{', '.join(sorted(shared))} with an empty data dir (its host came back under a new id)"
                )
                return _remove(f, m, None, why)
    return None


def replace_unreadable_state(f: Facts) -> Decision | None:
    """A member whose node cannot read its state: kept while healthy, removed once unhealthy for replace-after."""
    # The node may still hold the data (a corrupt state file is not an empty disk): etcd decides.
    for m in f.members:
        answered = f.view.peers.get(m.name)
        if not m.name or answered is None or answered.state_problem is None or m.healthy:
            continue
        if m.unhealthy_for < f.view.replace_after:
            return Decision(
                Wait(),
                f"node {m.name} cannot read its state ({answered.state_problem[:80]}): its member is kept, "
                f"and replaced only if still unhealthy after {f.view.replace_after:.0f}s",
            )
        return _remove(
            f,
            m,
            None,
            f"node {m.name} cannot read its state and its member has been unhealthy for {m.unhealthy_for:.0f}s",
        )
    return None


def add_member(f: Facts) -> Decision | None:
    """Too few members: add the lowest idle peer that has the version (one whose etcd kept failing last; learner on 3.4+) while healthy voting >= quorum(voting)."""
    have, want = len(f.members), f.spec.member_count
    if have >= want:
        return None
    if not f.joinable:
        lacking = f" (idle peers without the members' etcd version: {names(f.idle)})" if f.idle else ""
        return Decision(Wait(), f"{have} of {want} members; no idle peer to add{lacking}")
    if len(f.healthy_voting) < quorum(len(f.voting)):
        return Decision(
            Wait(), f"{have} of {want} members but only {len(f.healthy_voting)} healthy: not adding yet"
        )
    learner = supports_learners(f.cluster_version())
    return _after_backup(
        f,
        AddMember(f.joinable[0], learner),
        f"{have} of {want} members: adding peer {f.joinable[0]}{' as a learner' if learner else ''}",
    )


def shrink(f: Facts) -> Decision | None:
    """Too many: remove an unhealthy member, else one with no daemon, else the highest (if quorum stays)."""
    if len(f.members) <= f.spec.member_count:
        return None
    victim = sorted(f.members, key=lambda m: (not m.healthy, m.name not in f.view.peers, m.name))[-1]
    stop = victim.name if victim.name in f.with_state else None
    return _remove(f, victim, stop, f"{len(f.members)} members but the spec wants {f.spec.member_count}")


def replace_dead_member(f: Facts) -> Decision | None:
    """Unhealthy for --replace-after with no daemon, or one whose etcd keeps failing to start, while an idle peer waits: remove it (if quorum stays)."""
    peers = f.view.peers
    dead = [
        m
        for m in f.members
        if not m.healthy
        and m.unhealthy_for >= f.view.replace_after
        and (m.name not in peers or peers[m.name].etcd_problem is not None)
    ]
    spares = [pid for pid in f.joinable if peers[pid].etcd_problem is None]
    if not (dead and spares):
        return None
    m = dead[0]
    if m.name not in peers:
        why = f"member {m.name} unhealthy for {m.unhealthy_for:.0f}s with no daemon"
        return _remove(f, m, None, f"{why}; idle peer {spares[0]} can replace it")
    # Its node stops retrying and moves the data aside: it is idle then, a spare of last resort.
    problem = peers[m.name].etcd_problem or ""
    why = f"member {m.name} unhealthy for {m.unhealthy_for:.0f}s, its etcd failing ({problem[:200]})"
    return _remove(f, m, m.name, f"{why}; idle peer {spares[0]} can replace it")


def take_backup(f: Facts) -> Decision | None:
    """The interval has elapsed, `ctl backup-now` asked, or the last backup failed (retried with backoff), and a voting member is healthy: back up."""
    b, requests = f.view.backups, f.view.backup_requests
    if not (f.view.backup_due or requests or b.failures) or not f.healthy_voting or b.retry_in > 0:
        return None
    if b.failures:
        why = f"retrying a backup: {BACKUPS_FAILING}"
    else:
        why = "backup requested (ctl backup-now)" if requests else "backup interval elapsed"
    return Decision(TakeBackup(requests), why)


def change_version(f: Facts) -> Decision | None:
    """Peers run another version: when all are healthy and have it, in place one by one, else logically (while backups work)."""
    behind = sorted(
        pid
        for pid, info in f.with_state.items()
        if info.etcd_state and info.etcd_state.etcd_version != f.spec.etcd_version
    )
    if not behind:
        return None
    spec, pid = f.spec, behind[0]
    _, note = runnable(spec, f.with_state)
    if note:
        return Decision(
            Wait(), f"cannot change etcd version to {spec.etcd_version}{note}; leaving the cluster as it is"
        )
    if f.unhealthy or len(f.members) != spec.member_count:
        return Decision(
            Wait(), f"version change to {spec.etcd_version} waits for {spec.member_count} healthy members"
        )
    running = f.running_version(pid)
    if not in_place_upgrade_ok(running, spec.etcd_version):
        why = f"etcd {running} -> {spec.etcd_version} cannot be done in place (only a patch change or one minor up can)"
        if f.view.backups.failures:
            # Its backup is taken with clients cut off: quarantine only once backups work again,
            # so a failing store never puts the cluster in and out of quarantine.
            return Decision(Wait(), f"{why}; it waits, serving, until a backup succeeds: {BACKUPS_FAILING}")
        return Decision(
            LogicalVersionChange(tuple(sorted(f.with_state)), spec.etcd_version),
            f"{why}: quarantine, back up, restore the backup on the new version",
        )
    return _after_backup(
        f,
        UpgradeMember(pid, spec.etcd_version),
        f"member {pid} runs etcd {running}, the spec wants {spec.etcd_version}: restarting it in place",
    )


def restart_for_trust(f: Facts) -> Decision | None:
    """A member's etcd trusts other CA certificates than its files now hold (a CA rotation): with every member healthy, restart it, one per cycle."""
    outdated = sorted(pid for pid, info in f.with_state.items() if info.etcd_trust_outdated)
    if not outdated:
        return None
    why = f"etcd on {names(outdated)} trusts other CA certificates than its CA files now hold"
    if f.unhealthy:
        return Decision(Wait(), f"{why}; its restart waits until every member is healthy")
    pid = outdated[0]
    # A cluster of one or two cannot spare a member: clients wait out the restart there.
    spare = len(f.healthy_voting) - 1 >= quorum(len(f.voting))
    return Decision(
        RestartMember(pid),
        f"{why}: restarting etcd on {pid}" + ("" if spare else " (the others alone hold no quorum)"),
    )


def learner_waits(f: Facts) -> Decision | None:
    """A learner waits for its next promotion attempt (backing off) and no rule above applies: wait."""
    waiting = [m for m in f.members if m.is_learner and m.promotion.retry_in > 0]
    if not waiting:
        return None
    m = waiting[0]
    return Decision(
        Wait(),
        f"learner {m.name or f'{m.member_id:x}'} not promoted yet ({m.promotion.error[:200]}): next try in "
        f"{m.promotion.retry_in:.0f}s; removed if still failing after {f.view.replace_after:.0f}s",
    )


def wait_unhealthy(f: Facts) -> Decision | None:
    """Some member is unhealthy and no rule above applies: wait for it."""
    if f.unhealthy:
        return Decision(Wait(), f"{len(f.members)} members, unhealthy: {', '.join(f.unhealthy)}; waiting")
    return None


def converged(f: Facts) -> Decision:
    """Otherwise the cluster is as specified: wait."""
    return Decision(Wait(), f"cluster converged: {len(f.members)} of {f.spec.member_count} members healthy")


# -- Helpers -----------------------------------------------------------------------------------


def _remove(f: Facts, m: MemberView, stop: str | None, why: str) -> Decision:
    """Remove `m` only if the healthy voting members left keep quorum of the voting members left."""
    left = len(f.voting) - (0 if m.is_learner else 1)
    healthy_left = len(f.healthy_voting) - (1 if m.healthy and not m.is_learner else 0)
    if left < 1 or healthy_left < quorum(left):
        return Decision(
            Wait(),
            f"{why}, but removing {m.name or f'{m.member_id:x}'} would leave {healthy_left} healthy of {left}: waiting",
        )
    return _after_backup(
        f, RemoveMember(m.member_id, m.name, stop), f"{why}: removing member {m.name or f'{m.member_id:x}'}"
    )


def _after_backup(f: Facts, action: AddMember | RemoveMember | UpgradeMember, reason: str) -> Decision:
    """A membership or version change backs up first, unless a backup is fresh. While backups
    fail it waits for their retries; after CHANGE_AFTER_FAILURES failures in a row it goes ahead
    on a backup younger than RECENT_BACKUP, and without one it retries the backup and waits."""
    b = f.view.backups
    if b.age is not None and b.age <= FRESH_BACKUP:
        return Decision(replace(action, backup_first=False), reason)
    if not b.failures:
        return Decision(replace(action, backup_first=True), reason)
    if b.failures >= CHANGE_AFTER_FAILURES and b.age is not None and b.age <= RECENT_BACKUP:
        return Decision(
            replace(action, backup_first=False),
            f"{reason}, without a new backup (the newest is less than {_hours(RECENT_BACKUP)} old): {BACKUPS_FAILING}",
        )
    if b.failures < CHANGE_AFTER_FAILURES:
        if b.retry_in > 0:
            return Decision(Wait(), f"{reason}: waits for a backup first; {BACKUPS_FAILING}, retrying")
        return Decision(replace(action, backup_first=True), reason)
    newest = "there is none" if b.age is None else f"the newest is older than {_hours(RECENT_BACKUP)}"
    need = f"{reason}: waits for a backup ({newest}); {BACKUPS_FAILING}, retrying"
    return Decision(Wait(), need) if b.retry_in > 0 else Decision(TakeBackup(), need)


def _hours(t: timedelta) -> str:
    return f"{t.total_seconds() / 3600:g}h"
