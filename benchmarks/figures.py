"""What a benchmark hands to benchmarks/run_all.py: its figures, each beside raw etcd and a target.

The contract (benchmarks/README.md): a benchmark module exposes `figures(quick: bool) ->
list[Figure]`, and raises `Skipped` when it cannot run here (a missing etcd version, root, disk)
or, with `quick`, when it takes too long for a quick run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


class Skipped(Exception):
    """This benchmark does not run here; the message says why (one line)."""


@dataclass(frozen=True)
class Figure:
    name: str  # what was measured, e.g. "create 3 members: configure-cluster -> all serve"
    ours: float
    unit: str = "s"
    raw: float | None = None  # the same step done by hand with bare etcd, when there is one
    target: float | None = None  # the bound `ours` must meet, already worked out (e.g. raw + 1)
    target_text: str = ""  # how the target is stated, e.g. "<= raw + 1 s"
    higher_is_better: bool = False  # e.g. puts/s: the target is a floor, not a ceiling

    @property
    def ratio(self) -> float | None:
        return self.ours / self.raw if self.raw else None

    @property
    def ok(self) -> bool | None:
        """Whether the target is met; None when there is no target."""
        if self.target is None:
            return None
        return self.ours >= self.target if self.higher_is_better else self.ours <= self.target

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Figure:
        return cls(**d)


def figures_line(figures: list[Figure]) -> str:
    """The one JSON line a benchmark run as a child of run_all prints last."""
    return json.dumps({"figures": [f.to_json() for f in figures]})
