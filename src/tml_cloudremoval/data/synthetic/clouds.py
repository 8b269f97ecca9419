"""Synthetic clouds: thick cloud, cirrus and displaced shadows over a ground acquisition.

The cloudy acquisition is the same ground with a small radiometric change, soft-edged thick
clouds, thin cirrus (bright in B1, B2, B10 and the visible bands) and cloud shadows displaced
from the clouds (darkest in NIR and SWIR), as the Meraner/Schmitt detector in
``tml_cloudremoval.data.cloud_mask`` expects them. Layers are float32 (H, W) in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tml_cloudremoval.bands import S2_BAND_NAMES
from tml_cloudremoval.data.synthetic.ground import (
    band_positions,
    fractal_field,
    smoothstep,
    unit_noise,
)
from tml_cloudremoval.data.synthetic.spectra import CIRRUS, SHADOW_DARKENING, THICK_CLOUD


@dataclass(frozen=True)
class CloudLayers:
    """Cloud layers of one acquisition, each float32 (H, W) in [0, 1].

    opacity: thick cloud (1 = opaque); cirrus: thin cloud opacity; shadow: shadow strength
    (fraction of the darkening ``SHADOW_DARKENING`` applied).
    """

    opacity: np.ndarray
    cirrus: np.ndarray
    shadow: np.ndarray

    def cloud(self, threshold: float = 0.5) -> np.ndarray:
        """bool (H, W): thick cloud at least ``threshold`` opaque."""
        return self.opacity >= threshold

    def shadow_only(self, threshold: float = 0.3) -> np.ndarray:
        """bool (H, W): visible shadow (strength >= threshold, hardly any cloud on top)."""
        return (self.shadow >= threshold) & (self.opacity < 0.2)


def synthesize_clouds(
    rng: np.random.Generator,
    shape: tuple[int, int],
    cover: float,
    *,
    scale_px: float = 48.0,
    thin_probability: float = 0.5,
    shadow_offset_px: tuple[int, int] = (20, 20),
    edge_softness: float = 0.8,
) -> CloudLayers:
    """Thick clouds covering ``cover`` of the grid (opacity >= 0.5), optional cirrus, shadows.

    The thick-cloud field is drawn on a grid padded by the shadow offset, so that a shadow at
    pixel p is the (attenuated) opacity at p - shadow_offset_px: shadows of clouds just outside
    the patch fall inside it, as in real images. ``edge_softness`` is the width of the soft edge
    in standard deviations of the field.
    """
    h, w = shape
    dy, dx = (int(v) for v in shadow_offset_px)
    pad = max(abs(dy), abs(dx))
    field = fractal_field(rng, (h + 2 * pad, w + 2 * pad), scale_px, roughness=0.8)
    inner = field[pad : pad + h, pad : pad + w]
    if cover <= 0.0:
        opacity_padded = np.zeros_like(field)
    else:
        threshold = float(np.quantile(inner, 1.0 - min(cover, 1.0)))
        opacity_padded = smoothstep((field - threshold) / edge_softness + 0.5)
    opacity = opacity_padded[pad : pad + h, pad : pad + w].copy()
    shadow = opacity_padded[pad - dy : pad - dy + h, pad - dx : pad - dx + w] * np.float32(
        rng.uniform(0.75, 0.95)
    )
    if rng.random() < thin_probability:
        thin = fractal_field(rng, shape, 2.0 * scale_px, roughness=0.7)
        share = rng.uniform(0.2, 0.8)
        level = float(np.quantile(thin, 1.0 - share))
        cirrus = np.float32(rng.uniform(0.15, 0.45)) * smoothstep(thin - level + 0.5)
    else:
        cirrus = np.zeros(shape, dtype=np.float32)
    return CloudLayers(opacity, cirrus.astype(np.float32), shadow.astype(np.float32))


def render_cloudy(
    rng: np.random.Generator,
    reflectance: np.ndarray,
    layers: CloudLayers,
    *,
    band_names: Sequence[str] = S2_BAND_NAMES,
    gain_sigma: float = 0.015,
    noise: float = 0.002,
) -> np.ndarray:
    """The cloudy acquisition of ``reflectance`` (float32 (H, W, C), bands ``band_names``).

    Ground with a small per-band gain change, darkened by the shadows, then overlaid by thick
    cloud (textured cloud tops) and cirrus by alpha compositing, plus sensor noise. Returns
    float32 (H, W, C) reflectance.
    """
    shape = reflectance.shape[:2]
    if reflectance.shape[-1] != len(band_names):
        raise ValueError(f"reflectance has {reflectance.shape[-1]} bands, names {band_names}")
    positions = band_positions(band_names)
    gains = rng.normal(1.0, gain_sigma, len(positions)).astype(np.float32)
    tops = np.float32(0.88) + np.float32(0.06) * fractal_field(rng, shape, 6.0, roughness=0.8)
    thick = layers.opacity
    thick_tops = thick * np.clip(tops, np.float32(0.7), np.float32(1.05))
    clear_of_thick = np.float32(1.0) - thick
    clear_of_cirrus = np.float32(1.0) - layers.cirrus
    out = np.empty(reflectance.shape, dtype=np.float32)
    for i, k in enumerate(positions):
        band = reflectance[..., i] * (gains[i] * (1.0 - SHADOW_DARKENING[k] * layers.shadow))
        band *= clear_of_thick
        band += THICK_CLOUD[k] * thick_tops
        band *= clear_of_cirrus
        band += CIRRUS[k] * layers.cirrus
        band += np.float32(noise) * unit_noise(rng, shape)
        out[..., i] = band
    return out


def shadow_offset(
    rng: np.random.Generator, azimuth_rad: float, lo: float, hi: float
) -> tuple[int, int]:
    """(rows, cols) px a shadow lies from its cloud: distance U(lo, hi) along the sun azimuth."""
    distance = rng.uniform(lo, hi)
    return (round(distance * math.sin(azimuth_rad)), round(distance * math.cos(azimuth_rad)))
