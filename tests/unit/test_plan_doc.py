"""docs/architecture.md lists the planner's rules exactly as `RULES` orders and states them."""

from __future__ import annotations

import re
from pathlib import Path

from etcdmgr.controller.plan import RULES

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
BLOCK = re.compile(r"<!-- rules: [^\n]*-->\n(.*?)<!-- end of rules -->", re.DOTALL)


def rules_list() -> str:
    return "".join(f"{i}. `{rule.__name__}`: {rule.__doc__}\n" for i, rule in enumerate(RULES, 1))


def test_every_rule_states_itself_in_one_line() -> None:
    for rule in RULES:
        doc = rule.__doc__ or ""
        assert doc.strip() and "\n" not in doc and doc.endswith("."), rule.__name__


def test_the_architecture_doc_lists_the_rules_in_table_order() -> None:
    found = BLOCK.search(ARCHITECTURE.read_text())
    assert found, "docs/architecture.md has no generated rules block"
    expected = rules_list()
    assert found.group(1) == expected, f"run scripts/regen-rules-doc, or replace the rules block of docs/architecture.md with:\n{expected}"
