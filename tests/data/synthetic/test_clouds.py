"""synthetic/clouds.py: clouds brighten, shadows darken, the detector finds both."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from tml_cloudremoval.bands import band_indices
from tml_cloudremoval.data.cloud_mask import cloud_mask, cloud_shadow_mask
from tml_cloudremoval.data.synthetic.clouds import render_cloudy, shadow_offset, synthesize_clouds
from tml_cloudremoval.data.synthetic.ground import (
    observe_optical,
    reflectance_to_dn,
    synthesize_ground,
)

B2, B8, B10, B11 = band_indices(["B2", "B8", "B10", "B11"])


def _patch(seed: int, cover: float, size: int = 128):
    """Ground, cloud layers, clear and cloudy 13-band DN of one in-memory patch."""
    rng = np.random.default_rng(seed)
    ground = synthesize_ground(rng, (size, size), "summer", scale_px=24.0)
    layers = synthesize_clouds(
        rng, (size, size), cover, scale_px=24.0, thin_probability=0.0, shadow_offset_px=(10, -8)
    )
    clear = reflectance_to_dn(observe_optical(rng, ground.reflectance))
    cloudy = reflectance_to_dn(render_cloudy(rng, ground.reflectance, layers))
    return ground, layers, clear, cloudy


def test_clouds_brighten_b2_b10_and_shadows_darken_nir_swir() -> None:
    _, layers, clear, cloudy = _patch(seed=5, cover=0.45)
    cloud = layers.cloud()
    assert 0.40 < cloud.mean() < 0.50  # cover is met
    diff = cloudy.astype(np.float32) - clear.astype(np.float32)
    assert diff[..., B2][cloud].mean() > 2000  # thick cloud: + >0.2 reflectance in blue
    assert (diff[..., B10][cloud] > 0).mean() > 0.95  # and brighter in cirrus band B10
    shadow = layers.shadow_only()
    assert shadow.mean() > 0.02
    for band in (B8, B11):
        ratio = cloudy[..., band][shadow].astype(np.float32) / clear[..., band][shadow]
        assert np.median(ratio) < 0.6
    assert np.median(cloudy[..., B2][shadow] / clear[..., B2][shadow]) > np.median(
        cloudy[..., B8][shadow] / clear[..., B8][shadow]
    )  # shadows darken NIR more than blue
    far = ~ndimage.binary_dilation(layers.opacity > 0.01, iterations=3) & (layers.shadow < 0.01)
    assert np.abs(diff[..., B2][far]).mean() < 100  # elsewhere the same ground


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_detector_finds_synthetic_clouds(seed: int) -> None:
    _, layers, _, cloudy = _patch(seed=seed, cover=0.3 + 0.2 * seed)
    truth = layers.cloud()
    mask = cloud_shadow_mask(cloudy, cloud_threshold=0.2)
    assert mask.dtype == np.uint8
    assert mask[truth].mean() > 0.95  # thick cloud blobs are found
    assert mask[layers.shadow_only()].mean() > 0.8  # and their shadows
    clear_far = ~ndimage.binary_dilation(layers.opacity > 0.01, iterations=6)
    assert cloud_mask(cloudy)[clear_far].mean() < 0.02  # no cloud on clear ground


def test_no_cover_no_cloud_and_shadow_offset_along_azimuth() -> None:
    layers = synthesize_clouds(np.random.default_rng(0), (32, 32), 0.0, thin_probability=0.0)
    assert not layers.opacity.any() and not layers.cirrus.any() and not layers.shadow.any()
    rng = np.random.default_rng(4)
    distance = np.random.default_rng(4).uniform(10.0, 10.0)
    assert shadow_offset(rng, math.pi / 2, 10.0, 10.0) == (round(distance), 0)  # straight down
