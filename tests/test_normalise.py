"""Clip/scale of optical and SAR values and their inverses, checked against hand values."""

from __future__ import annotations

import numpy as np
import pytest

from tml_cloudremoval.normalise import (
    MAX_VAL_SAR,
    denormalise_optical,
    denormalise_sar,
    dn_to_reflectance,
    normalise_optical,
    normalise_sar,
    optical_to_dn_uint16,
)


def test_optical_clip_and_scale_by_hand():
    dn = np.array([0, 1000, 10000, 12000], dtype=np.uint16)
    np.testing.assert_allclose(normalise_optical(dn), [0.0, 0.5, 5.0, 5.0])
    assert normalise_optical(dn).dtype == np.float32


def test_optical_inverse_is_exact_inside_the_range():
    dn = np.arange(0, 10001, 7, dtype=np.uint16)
    np.testing.assert_array_equal(optical_to_dn_uint16(normalise_optical(dn)), dn)
    np.testing.assert_allclose(denormalise_optical(normalise_optical(dn)), dn, atol=1e-3)


def test_optical_to_uint16_clips_out_of_range_predictions():
    np.testing.assert_array_equal(optical_to_dn_uint16(np.array([-0.1, 5.5])), [0, 10000])


def test_sar_by_hand():
    db = np.array([[-25.0, -32.5], [0.0, 0.0], [-12.5, -16.25], [-40.0, 3.0]], np.float32)
    out = normalise_sar(db)
    np.testing.assert_allclose(out, [[0, 0], [2, 2], [1, 1], [0, 2]], atol=1e-6)
    assert out.max() <= MAX_VAL_SAR


def test_sar_inverse_on_the_clipped_range():
    rng = np.random.default_rng(1)
    db = np.stack([rng.uniform(-25, 0, 100), rng.uniform(-32.5, 0, 100)], -1).astype(np.float32)
    np.testing.assert_allclose(denormalise_sar(normalise_sar(db)), db, atol=1e-5)


def test_sar_needs_two_channels():
    with pytest.raises(ValueError, match="3 channels"):
        normalise_sar(np.zeros((2, 2, 3)))


def test_reflectance():
    np.testing.assert_allclose(dn_to_reflectance(np.array([0, 2500, 10000])), [0, 0.25, 1.0])
