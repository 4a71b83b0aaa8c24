"""`ctl status`: what the cluster is doing now, from the status the leader keeps in the store.

Exit 0 when the status is fresh and the cluster serves as specified; 1 when it is stale (no
leader is writing it), missing, or the cluster is degraded; each reason is one line on stderr.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from etcdmgr.cli import ctl_text as text
from etcdmgr.model import EtcdmgrError
from etcdmgr.model.status import ClusterStatus, PeerStatus
from etcdmgr.store import BackupStore
from etcdmgr.store.layout import CONTROL_DIR, STATUS_FILE

CERT_WARNING = 30 * 86400.0  # a certificate expiring sooner makes the cluster degraded


class NoStatus(EtcdmgrError):
    """The store holds no status (or none this program can read)."""


async def read_status(store: BackupStore) -> ClusterStatus:
    raw = await store.read_status()
    if raw is None:
        raise NoStatus(
            f"no status in {store.url} ({CONTROL_DIR}/{STATUS_FILE}): no leader has written one yet "
            "(is a daemon of this release running and reaching the store?)"
        )
    return ClusterStatus.from_bytes(raw)


def staleness(status: ClusterStatus, now: float) -> str | None:
    """Why the status cannot be trusted to be current, or None."""
    old = now - status.time
    if old <= status.stale_limit():
        return None
    return (
        f"the status is {text.age(old)} old (written by leader {status.leader} at {text.utc(status.time)}): "
        f"no leader has written it for {text.age(status.stale_limit())}; are the daemons running and "
        "reaching the store?"
    )


def _member_problem(p: PeerStatus) -> str | None:
    if p.member and not p.member_healthy:
        return f"member {p.peer_id} is unhealthy"
    if p.quarantined:
        return f"{p.peer_id} is quarantined (serves no clients)"
    return None


def degraded(status: ClusterStatus, now: float) -> list[str]:
    """What keeps the cluster from serving as specified, one line each ([] when all is well)."""
    out: list[str] = []
    if status.spec is None:
        out.append("no usable cluster spec")
    else:
        serving = sum(1 for p in status.peers if p.serving)
        if serving < status.spec.member_count:
            out.append(f"{serving} of {status.spec.member_count} members serve clients")
    out += [
        f"the daemon of {p.peer_id} does not answer the leader"
        for p in status.peers
        if not p.daemon and p.address
    ]
    out += [problem for p in status.peers if (problem := _member_problem(p))]
    out += list(status.problems)
    if status.backup_failure is not None:
        out.append(f"the last backup failed: {status.backup_failure.error}")
    if status.drill is not None and status.drill.record is not None and not status.drill.record.passed:
        out.append(
            f"the last restore drill (backup {status.drill.backup}) failed: {status.drill.record.reason}"
        )
    out += [
        f"certificate {name} expires in {text.age(when - now)}"
        for name, when in sorted(status.certificates.items())
        if when - now < CERT_WARNING
    ]
    return out


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _peer_row(p: PeerStatus, leader: str) -> list[str]:
    health = "-" if p.member_healthy is None else "healthy" if p.member_healthy else "unhealthy"
    return [
        p.peer_id,
        p.address or "-",
        "leader" if p.peer_id == leader else "",
        "up" if p.daemon else "down",
        p.member or "-",
        health,
        p.version or "-",
        _yes(p.quarantined),
        p.problem,
    ]


def status_text(status: ClusterStatus, now: float) -> str:
    """The table of peers, then one line per fact, like `patronictl list`."""
    spec = f"{status.spec.member_count} members, etcd {status.spec.etcd_version}" if status.spec else "none"
    rows = [_peer_row(p, status.leader) for p in status.peers]
    headers = ["PEER", "ADDRESS", "ROLE", "DAEMON", "MEMBER", "HEALTH", "ETCD", "QUARANTINED", "PROBLEM"]
    lines = [
        f"cluster {status.cluster_token or '(none running)'}: spec {spec}; leader {status.leader}",
        text.table(headers, rows),
        "",
        f"decision:     {status.action}: {status.reason}{' (in progress)' if status.acting else ''}",
    ]
    if (last := status.last_action) is not None:
        outcome = f"FAILED: {last.error}" if last.error else "done"
        lines.append(f"last action:  {last.action} {outcome} ({text.age(now - last.time)} ago)")
    if (b := status.backup) is not None:
        details = [f"{text.age(now - b.time)} ago"]
        details += [text.size(b.size)] if b.size is not None else []
        details += [f"etcd {b.etcd_version}"] if b.etcd_version else []
        lines.append(f"last backup:  {b.name} ({', '.join(details)})")
    else:
        lines.append("last backup:  none")
    if (f := status.backup_failure) is not None:
        lines.append(f"              the last attempt FAILED {text.age(now - f.time)} ago: {f.error}")
    if (d := status.drill) is not None:
        r = d.record
        drill = (
            "running"
            if r is None
            else f"{r.result.upper() if not r.passed else r.result} {text.age(now - r.time)} ago on {r.node} "
            f"in {r.seconds:.1f}s: {r.reason}"
        )
        lines.append(f"last drill:   backup {d.backup}: {drill}")
    for problem in status.problems:
        lines.append(f"problem:      {problem}")
    if status.certificates:
        soonest = sorted(status.certificates.items(), key=lambda item: item[1])
        certs = ", ".join(
            f"{name} {text.utc(when)[:10]} (in {text.age(when - now)})" for name, when in soonest
        )
        lines.append(f"certificates: {certs}")
    lines.append(f"status:       written {text.age(now - status.time)} ago by leader {status.leader}")
    return "\n".join(lines)


def status_json(status: ClusterStatus, now: float) -> dict[str, Any]:
    return {
        "status": status.to_json(),
        "ageSeconds": round(now - status.time, 1),
        "stale": staleness(status, now) is not None,
        "degraded": degraded(status, now),
    }


async def show_status(store: BackupStore, output: str) -> int:
    status = await read_status(store)
    now = time.time()
    if output == "json":
        print(json.dumps(status_json(status, now), indent=2, sort_keys=True))
    else:
        print(status_text(status, now))
    problems = [s] if (s := staleness(status, now)) else []
    problems += [f"degraded: {d}" for d in degraded(status, now)]
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 1 if problems else 0
