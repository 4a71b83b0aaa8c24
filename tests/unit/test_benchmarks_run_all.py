"""benchmarks/run_all.py: a benchmark's figures are judged against their targets, a skipped one
says why, and every benchmark here takes part (exposes `figures(quick)`)."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from figures import Figure  # noqa: E402
from run_all import MARK, benchmark_names, child, table  # noqa: E402


def test_a_figure_is_judged_against_its_target_either_way() -> None:
    assert Figure("create", 1.2, raw=0.4, target=1.4, target_text="<= raw + 1 s").ok is True
    assert Figure("create", 1.5, raw=0.4, target=1.4).ok is False
    assert Figure("puts/s ratio", 0.97, "x", target=0.95, higher_is_better=True).ok is True
    assert Figure("shown only", 3.0).ok is None
    assert Figure("create", 1.2, raw=0.4).ratio == pytest.approx(3.0)
    f = Figure("create", 1.2, raw=0.4, target=1.4, target_text="<= raw + 1 s")
    assert Figure.from_json(json.loads(json.dumps(f.to_json()))) == f


def test_the_table_has_one_row_per_figure_with_its_verdict() -> None:
    rows = [
        ("converge", Figure("create 3", 1.2, raw=0.4, target=1.4, target_text="<= raw + 1 s")),
        ("converge", Figure("grow 1 -> 3", 7.0, raw=5.4, target=6.4, target_text="<= raw floor + 1 s")),
        ("startup", Figure("ctl get", 0.2, target=0.3, target_text="<= 0.3 s")),
    ]
    lines = table(rows).splitlines()
    assert lines[0].split() == ["benchmark", "figure", "ours", "raw", "ratio", "target"]
    assert lines[1].endswith("OK") and "3.00x" in lines[1] and "<= raw + 1 s (1.4 s)" in lines[1]
    assert lines[2].endswith("MISSED")
    assert lines[3].endswith("OK") and "<= 0.3 s" in lines[3]


def test_a_benchmark_that_cannot_run_here_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "needs_root.py").write_text(
        "from figures import Skipped\n\ndef figures(quick):\n    raise Skipped('needs root')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert child("needs_root", quick=True) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(MARK) and json.loads(last[len(MARK) :]) == {"skipped": "needs root"}


@pytest.mark.parametrize("name", benchmark_names())
def test_every_benchmark_exposes_figures(name: str) -> None:
    tree = ast.parse((BENCHMARKS / f"{name}.py").read_text())
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "figures"]
    assert found and [a.arg for a in found[0].args.args] == ["quick"], (
        f"benchmarks/{name}.py has no figures(quick) (benchmarks/README.md)"
    )
