"""Synthetic Sentinel-1: backscatter tied to the ground, gamma speckle, missing pixels.

SAR tells a model what lies under a cloud: backscatter follows the land cover and the texture
and vigour fields of :class:`~.ground.Ground` (water dark, urban bright, VH below VV). Values in
dB (float32) after :func:`speckle_db`. Arrays are channels_last (H, W, 2) in (VV, VH) order.
"""

from __future__ import annotations

import numpy as np

from tml_cloudremoval.data.synthetic.ground import Ground
from tml_cloudremoval.data.synthetic.spectra import (
    CLASS_SAR_DB,
    SAR_TEXTURE_DB,
    SEASON_VIGOUR,
    URBAN,
    VEGETATION,
)


def sar_backscatter_linear(rng: np.random.Generator, ground: Ground) -> np.ndarray:
    """Speckle-free backscatter (sigma0, linear power), float32 (H, W, 2) in (VV, VH) order.

    Class level (water dark, vegetation mid, urban bright, VH below VV) plus the texture and
    vigour fields of ``ground`` (so SAR carries the within-class variation a model must restore),
    a seasonal shift for vegetation and a few strong point scatterers in urban areas.
    """
    classes = ground.classes
    db = CLASS_SAR_DB[classes]  # (H, W, 2)
    db += (SAR_TEXTURE_DB[classes] * ground.texture)[..., None] * np.float32([1.0, 0.8])
    is_vegetation = classes == VEGETATION
    season_shift = 2.0 * (SEASON_VIGOUR[ground.season] - 0.7)
    for channel, per_vigour in enumerate((0.6, 1.5)):  # VV, VH: VH reacts more to volume
        db[..., channel] += np.where(
            is_vegetation, np.float32(per_vigour) * ground.vigour + np.float32(season_shift), 0.0
        ).astype(np.float32)
    scatterers = (classes == URBAN) & (rng.random(classes.shape, dtype=np.float32) < 0.03)
    db[scatterers] += rng.uniform(5.0, 12.0, (int(scatterers.sum()), 1)).astype(np.float32)
    return np.power(np.float32(10.0), db / np.float32(10.0)).astype(np.float32)


def speckle_db(rng: np.random.Generator, linear: np.ndarray, looks: float) -> np.ndarray:
    """Multiplicative gamma speckle (mean 1, ``looks`` equivalent looks) then dB, float32."""
    speckled = linear * rng.gamma(looks, 1.0 / looks, linear.shape).astype(np.float32)
    return (10.0 * np.log10(np.maximum(speckled, np.float32(1e-6)))).astype(np.float32)


def add_nan_pixels(rng: np.random.Generator, sar_db: np.ndarray, fraction: float) -> np.ndarray:
    """Set about ``fraction`` of the pixels (at least one) of (H, W, C) to NaN in all channels."""
    h, w = sar_db.shape[:2]
    n = max(1, round(fraction * h * w))
    flat = rng.choice(h * w, size=min(n, h * w), replace=False)
    sar_db[np.unravel_index(flat, (h, w))] = np.nan
    return sar_db
