"""``evaluation:`` parameters (conf/base/parameters_evaluation.yml), validated on entry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tml_cloudremoval.config import bounds, from_params
from tml_cloudremoval.evaluation.protocol import COVERAGE_BINS_PERCENT, check_coverage_bins


@dataclass(frozen=True)
class EvaluationConfig:
    """How the test split is evaluated and which patches the example figure shows."""

    batch_size: int = field(default=4, metadata=bounds(1))
    """Patches per forward pass (memory grows with it, not with the size of the test split)."""
    n_examples: int = field(default=4, metadata=bounds(0))
    """Test patches in evaluation_examples.png, spread over the range of cloud cover ..."""
    example_indices: list[int] | None = field(default=None, metadata=bounds(0))
    """... or exactly these store positions (column ``position`` of per_patch_metrics.csv)."""
    override_contract: bool = False
    """Evaluate a test store made with other preprocessing than the model's contract (warning)."""
    coverage_bins: tuple[float, ...] = field(
        default=COVERAGE_BINS_PERCENT, metadata=bounds(0.0, 100.0)
    )
    """Edges in percent of the cloud-cover bins of the per-image figures: strictly increasing,
    within [0, 100]; bins [lo, hi), the last [lo, hi]."""

    def check(self) -> list[str]:
        """Cross-field rules (``from_params`` prefixes the section): the bin edges."""
        return [f"coverage_bins: {fault}" for fault in check_coverage_bins(self.coverage_bins)]


def evaluation_config(params: Mapping[str, Any] | None) -> EvaluationConfig:
    """``params:evaluation`` -> :class:`EvaluationConfig`; raises ``ConfigError`` naming the key."""
    return from_params(EvaluationConfig, params, "evaluation")
