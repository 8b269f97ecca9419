"""The aleatoric interface: units of the predicted standard deviation, telling models apart."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.models.uncertainty import STD_FACTOR, std_reflectance, uncertainty_of


def test_std_in_reflectance_by_hand():
    # b = 1 model unit = 2000 DN = 0.2 reflectance; Laplace sd = sqrt(2) b.
    assert STD_FACTOR == pytest.approx(math.sqrt(2) * 0.2)
    np.testing.assert_allclose(
        std_reflectance(np.array([0.0, math.log(0.05)])), [0.2 * math.sqrt(2), 0.01 * math.sqrt(2)]
    )


def test_uncertainty_of_reads_the_outputs():
    assert uncertainty_of(build_dsen2cr(4, 1, uncertainty="aleatoric")) == "aleatoric"
    assert uncertainty_of(build_dsen2cr(4, 1)) == "none"
    assert uncertainty_of(object()) == "none"
