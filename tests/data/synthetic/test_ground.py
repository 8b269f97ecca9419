"""synthetic/ground.py: smooth random fields, the ground's spectra, DN conversion."""

from __future__ import annotations

import numpy as np
import pytest

from tml_cloudremoval.bands import TML_BAND_NAMES, band_indices
from tml_cloudremoval.data.synthetic.ground import (
    fractal_field,
    reflectance_to_dn,
    synthesize_ground,
    unit_noise,
)
from tml_cloudremoval.data.synthetic.spectra import SEASON_NAMES, VEGETATION, WATER, season_of

B8 = band_indices(["B8"])[0]


def test_fractal_field_and_dn_conversion() -> None:
    field = fractal_field(np.random.default_rng(0), (50, 70), 8.0)
    assert field.shape == (50, 70) and field.dtype == np.float32
    assert abs(float(field.mean())) < 1e-4 and abs(float(field.std()) - 1.0) < 1e-4
    # neighbouring pixels are strongly correlated (smooth), unlike white noise
    assert np.corrcoef(field[:, :-1].ravel(), field[:, 1:].ravel())[0, 1] > 0.9
    dn = reflectance_to_dn(np.array([-1.0, 0.0, 0.1234, 0.5, 7.0], dtype=np.float32))
    assert dn.dtype == np.uint16 and dn.tolist() == [1, 1, 1234, 5000, 65535]


def test_unit_noise_has_mean_zero_variance_one() -> None:
    noise = unit_noise(np.random.default_rng(1), (400, 500))
    assert noise.dtype == np.float32
    assert abs(float(noise.mean())) < 0.01 and abs(float(noise.var()) - 1.0) < 0.01
    assert float(np.abs(noise).max()) <= np.sqrt(3.0) + 1e-6  # uniform on [-sqrt 3, sqrt 3]


def test_ground_spectra_by_class_and_band_subset() -> None:
    ground = synthesize_ground(np.random.default_rng(3), (128, 128), "summer", scale_px=24.0)
    assert ground.reflectance.shape == (128, 128, 13) and ground.classes.dtype == np.uint8
    refl = ground.reflectance[..., B8]  # water dark in NIR, vegetation bright
    assert np.median(refl[ground.classes == WATER]) < 0.06
    assert np.median(refl[ground.classes == VEGETATION]) > 0.25
    tml = synthesize_ground(np.random.default_rng(3), (128, 128), "summer", 24.0, TML_BAND_NAMES)
    np.testing.assert_array_equal(tml.classes, ground.classes)  # same draws, fewer bands
    np.testing.assert_array_equal(
        tml.reflectance, ground.reflectance[..., band_indices(TML_BAND_NAMES)]
    )


def test_seasons() -> None:
    assert season_of("ROIs1970_fall") == "fall" and set(SEASON_NAMES) == {
        "spring",
        "summer",
        "fall",
        "winter",
    }
    with pytest.raises(ValueError, match="monsoon"):
        season_of("ROIs9999_monsoon")
    with pytest.raises(ValueError, match="season 'monsoon'"):
        synthesize_ground(np.random.default_rng(0), (8, 8), "monsoon")
