"""benchmarks/interleave.py: the ABAB order and the statistics, against hand-worked values."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from interleave import interleaved, ratio_spread, spread


def test_modes_alternate_and_rotate():
    calls: list[str] = []

    def mode(name: str, value: float):
        def run() -> float:
            calls.append(name)
            return value + len(calls)

        return run

    out = interleaved({"a": mode("a", 0.0), "b": mode("b", 100.0)}, repeats=3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert out == {"a": [1.0, 4.0, 5.0], "b": [102.0, 103.0, 106.0]}


def test_without_rotation_the_order_is_fixed():
    calls: list[str] = []
    interleaved(
        {"a": lambda: calls.append("a") or 0.0, "b": lambda: calls.append("b") or 0.0},
        2,
        rotate=False,
    )
    assert calls == ["a", "b", "a", "b"]


def test_spread_and_ratio_by_hand():
    s = spread([3.0, 1.0, 2.0, 10.0])
    assert (s.median, s.low, s.high, s.n) == (2.5, 1.0, 10.0, 4)
    assert s.relative_range == pytest.approx(9.0 / 2.5)
    assert s.text() == "2.5 (1-10, n=4)"
    r = ratio_spread([2.0, 6.0, 3.0], [1.0, 2.0, 3.0])  # ratios 2, 3, 1
    assert (r.median, r.low, r.high) == (2.0, 1.0, 3.0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="repeats"):
        interleaved({"a": lambda: 1.0}, 0)
    with pytest.raises(ValueError, match="no measurements"):
        spread([])
    with pytest.raises(ValueError, match="rounds"):
        ratio_spread([1.0], [1.0, 2.0])
