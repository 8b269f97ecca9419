"""Stable benchmark figures on a shared machine: modes interleaved over repeats (ABAB...).

Timing mode A three times and then mode B three times puts any change of machine load (another
process, a thermal or frequency step, a page cache warming) wholly into one mode, and a ratio
measured once that way can flip from one run to the next. :func:`interleaved` runs the modes in
turns, A B A B ..., for ``repeats`` rounds (the order within a round rotates, so neither mode is
always first) and keeps every measurement; :func:`spread` reports the median with the range, and
:func:`ratio_spread` the median of the per-round ratios (each from neighbouring measurements, so
a load change between rounds cancels out).

The benchmarks print these; nothing here is asserted by the tests beyond the arithmetic.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Spread", "interleaved", "ratio_spread", "spread"]


@dataclass(frozen=True)
class Spread:
    """Median, minimum and maximum of repeated measurements, and how many there were."""

    median: float
    low: float
    high: float
    n: int

    @property
    def relative_range(self) -> float:
        """(high - low) / median: 0.1 means the repeats lie within 10 % of the median."""
        return (self.high - self.low) / self.median if self.median else float("nan")

    def text(self, digits: int = 3) -> str:
        """``"1.23 (1.20-1.31, n=5)"``."""
        f = f"{{:.{digits}g}}"
        return f"{f.format(self.median)} ({f.format(self.low)}-{f.format(self.high)}, n={self.n})"


def spread(values: Sequence[float]) -> Spread:
    """The :class:`Spread` of ``values`` (at least one)."""
    if not values:
        raise ValueError("no measurements")
    values = [float(v) for v in values]
    return Spread(statistics.median(values), min(values), max(values), len(values))


def interleaved(
    modes: Mapping[str, Callable[[], float]], repeats: int, rotate: bool = True
) -> dict[str, list[float]]:
    """Call every mode once per round, ``repeats`` rounds -> ``{mode: [value per round]}``.

    Each callable returns one measurement (seconds, samples/s, ...). With ``rotate``, round r
    starts with mode ``r mod len(modes)`` (A B, B A, A B, ...), so warm-up effects within a
    round do not always favour the same mode.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    names = list(modes)
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names) if rotate else 0
        for name in names[shift:] + names[:shift]:
            out[name].append(float(modes[name]()))
    return out


def ratio_spread(numerator: Sequence[float], denominator: Sequence[float]) -> Spread:
    """Spread of the per-round ratios ``numerator[r] / denominator[r]`` (same rounds)."""
    if len(numerator) != len(denominator):
        raise ValueError(f"{len(numerator)} against {len(denominator)} rounds")
    return spread([a / b for a, b in zip(numerator, denominator, strict=True)])
