"""evaluation.coverage_bins: validated edges in percent, each fault naming the key."""

from __future__ import annotations

import pytest

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.evaluation.config import evaluation_config


def test_default_bins_are_the_published_breakdown():
    assert evaluation_config(None).coverage_bins == (0, 10, 30, 50, 70, 90, 100)
    assert evaluation_config({"coverage_bins": [0, 50, 100]}).coverage_bins == (0.0, 50.0, 100.0)


@pytest.mark.parametrize(
    ("bins", "message"),
    [
        ([0, 30, 10, 100], "evaluation.coverage_bins: edges must be strictly increasing"),
        ([0, 10, 10, 100], "evaluation.coverage_bins: edges must be strictly increasing"),
        ([0, 150], "evaluation.coverage_bins: must be <= 100.0"),
        ([-10, 50], "evaluation.coverage_bins: must be >= 0.0"),
        ([50], "evaluation.coverage_bins: needs at least two edges"),
        ("0-10", "evaluation.coverage_bins: expected a list"),
        ([0, "ten"], r"evaluation.coverage_bins\[1\]: expected float"),
    ],
)
def test_bad_bins_are_rejected_naming_the_key(bins, message):
    with pytest.raises(ConfigError, match=message):
        evaluation_config({"coverage_bins": bins})
