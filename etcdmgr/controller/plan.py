"""The planner: (what the leader saw) -> (one action, and why). Pure: no I/O, no clock.

`RULES` is the whole policy, in priority order: the first rule that decides wins. Each rule is
one function of controller/rules.py, over the `Facts` of controller/facts.py, and its docstring
states it; docs/architecture.md lists them (tests/unit/test_plan_doc.py keeps that list true).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from etcdmgr.controller import rules as r
from etcdmgr.controller.actions import Decision, Wait
from etcdmgr.controller.facts import Facts, quorum
from etcdmgr.controller.rules import NO_SPEC, ZERO_MEMBERS
from etcdmgr.controller.view import ClusterView

__all__ = ["COULD_NOT_DECIDE", "NO_SPEC", "RULES", "ZERO_MEMBERS", "Rule", "plan", "quorum"]

log = logging.getLogger(__name__)

Rule = Callable[[Facts], Decision | None]

RULES: tuple[Rule, ...] = (
    r.no_spec,
    r.unusable_spec,
    r.bad_peer_data,
    r.unknown_command,
    r.restore,
    r.mark_created,
    r.create,
    r.zero_members,
    r.members_unlisted,
    r.duplicate_member_names,
    r.lift_quarantine,
    r.start_added_member,
    r.promote_learner,
    r.stop_orphan,
    r.update_peer_urls,
    r.replace_empty_disk,
    r.replace_returned_host,
    r.replace_unreadable_state,
    r.add_member,
    r.shrink,
    r.replace_dead_member,
    r.take_backup,
    r.change_version,
    r.restart_for_trust,
    r.learner_waits,
    r.wait_unhealthy,
    r.converged,
)

COULD_NOT_DECIDE = "planner could not decide"


def plan(view: ClusterView) -> Decision:
    """The decision of the first rule in `RULES` that decides. Never raises: a rule that fails
    (a bug, or data no rule expected) makes the leader wait, so one bad value cannot wedge it."""
    name = "reading the view"
    try:
        facts = Facts.of(view)
        for rule in RULES:
            name = rule.__name__
            if (decision := rule(facts)) is not None:
                return decision
    except Exception as e:
        log.error("planner rule %s failed", name, exc_info=True)
        return Decision(Wait(), f"{COULD_NOT_DECIDE}: {name}: {type(e).__name__}: {str(e)[:200]}")
    return Decision(Wait(), f"{COULD_NOT_DECIDE}: no rule decided")
