"""The layer order of docs/architecture.md is a contract: no module imports a package above its own.

The order is read from the doc's ```layers block, so the doc and this check cannot drift apart.
Every import counts, including those under TYPE_CHECKING and inside functions.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "etcdmgr"
DOC = ROOT / "docs" / "architecture.md"


def layer_of_package() -> dict[str, int]:
    """Package -> its layer (0 is the top); packages on one line of the block share a layer."""
    block = re.search(r"^```layers\n(.*?)^```", DOC.read_text(), re.MULTILINE | re.DOTALL)
    assert block, f"{DOC} has no ```layers block"
    return {
        name: depth
        for depth, line in enumerate(block.group(1).splitlines())
        for name in line.split("#")[0].split()
    }


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in one file."""
    module_parts = path.relative_to(ROOT).with_suffix("").parts
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module_parts[: len(module_parts) - node.level]
                yield node.lineno, ".".join((*base, *([node.module] if node.module else [])))
            elif node.module:
                yield node.lineno, node.module


def package_of(module: str) -> str | None:
    """'etcdmgr.node.service' -> 'node'; None for the root package and modules outside etcdmgr."""
    parts = module.split(".")
    if parts[0] != "etcdmgr" or len(parts) == 1:
        return None  # the root package holds only the version: anyone may read it
    return parts[1]


def upward_imports(layers: dict[str, int]) -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) == 1:
            continue  # __init__ (the version) and __main__ (the entry point above every layer)
        own = rel.parts[0]
        for line, module in imported_modules(path):
            target = package_of(module)
            if target is None or target == own:
                continue
            if target not in layers:
                problems.append(f"etcdmgr/{rel}:{line} imports {module}: {target} is in no layer")
            elif layers[target] <= layers[own]:
                where = "beside" if layers[target] == layers[own] else "above"
                problems.append(
                    f"etcdmgr/{rel}:{line} imports {module}: {own} may not import {target} ({where} it)"
                )
    return problems


def test_every_package_has_a_layer() -> None:
    layers = layer_of_package()
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages - layers.keys() == set(), "packages missing from docs/architecture.md's layers"
    assert layers.keys() - packages == set(), "layers that name no package"


def test_imports_point_down_only() -> None:
    problems = upward_imports(layer_of_package())
    assert not problems, "imports against the layer order of docs/architecture.md:\n" + "\n".join(problems)


def test_the_check_names_an_upward_import() -> None:
    # The check itself: pretend util sits on top, so every import of util by others goes up.
    layers = layer_of_package()
    upside_down = {name: -depth for name, depth in layers.items()}
    problems = upward_imports(upside_down)
    assert any(
        p.startswith("etcdmgr/node/state_file.py:")
        and "imports etcdmgr.util.atomic: node may not import util" in p
        for p in problems
    ), problems
