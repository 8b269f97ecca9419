"""Random fields and the synthetic ground: land cover, reflectance, texture, DN conversion.

Ground truth is a land-cover map (water, vegetation, bare soil, urban) drawn from smooth random
fields, with a 13-band top-of-atmosphere spectrum per class (:mod:`.spectra`), within-class
texture and seasonal vegetation vigour. Units: reflectance in [0, ~1], written as uint16 DN =
reflectance x 10000. Arrays are channels_last (H, W, C).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

from tml_cloudremoval.bands import S2_BAND_NAMES, band_indices
from tml_cloudremoval.data.synthetic.spectra import (
    BLUR_SIGMA_PX,
    CLASS_SPECTRA,
    DRY_VEGETATION,
    SEASON_VIGOUR,
    TEXTURE_AMPLITUDE,
    TEXTURE_WEIGHT,
    VEGETATION,
)
from tml_cloudremoval.normalise import REFLECTANCE_SCALE


def fractal_field(
    rng: np.random.Generator, shape: tuple[int, int], scale_px: float, roughness: float = 1.0
) -> np.ndarray:
    """Smooth random field, float32 (H, W), mean 0 and standard deviation 1.

    White noise filtered in the Fourier domain by (1 + (2 pi f scale_px)^2)^-roughness: features
    of about ``scale_px`` pixels, finer detail fading faster for larger ``roughness``
    (1 = terrain-like, 0.75 = cloud-like ragged edges). The field is periodic over ``shape``.
    """
    h, w = int(shape[0]), int(shape[1])
    fh, fw = fft.next_fast_len(h, real=True), fft.next_fast_len(w, real=True)
    spectrum = fft.rfft2(unit_noise(rng, (fh, fw)), workers=1)
    fy = fft.fftfreq(fh).astype(np.float32)[:, None]
    fx = fft.rfftfreq(fw).astype(np.float32)[None, :]
    k2 = (fy * fy + fx * fx) * np.float32((2.0 * math.pi * scale_px) ** 2)
    spectrum *= (1.0 + k2) ** np.float32(-roughness)
    spectrum[0, 0] = 0.0
    field = fft.irfft2(spectrum, s=(fh, fw), workers=1)[:h, :w].astype(np.float32)
    field -= field.mean(dtype=np.float64)  # the crop to (h, w) moves mean and spread a little
    std = float(field.std(dtype=np.float64))
    field /= np.float32(std if std > 0 else 1.0)
    return field


def smoothstep(x: np.ndarray) -> np.ndarray:
    """3x^2 - 2x^3 on x clipped to [0, 1]: a soft edge."""
    x = np.clip(x, 0.0, 1.0)
    return (x * x * (3.0 - 2.0 * x)).astype(np.float32)


@dataclass(frozen=True)
class Ground:
    """The cloud-free surface of a scene.

    Attributes:
        classes: uint8 (H, W), land-cover code (index into ``LAND_COVER_CLASSES``).
        reflectance: float32 (H, W, C), top-of-atmosphere reflectance of ``band_names``.
        texture: float32 (H, W), within-class brightness/roughness field (std 1), shared by SAR.
        vigour: float32 (H, W), vegetation vigour field (std 1), shared by SAR.
        season: "spring" | "summer" | "fall" | "winter".
    """

    classes: np.ndarray
    reflectance: np.ndarray
    texture: np.ndarray
    vigour: np.ndarray
    season: str
    band_names: tuple[str, ...] = S2_BAND_NAMES


def synthesize_ground(
    rng: np.random.Generator,
    shape: tuple[int, int],
    season: str,
    scale_px: float = 40.0,
    band_names: Sequence[str] = S2_BAND_NAMES,
) -> Ground:
    """Land cover + reflectance (H, W, len(band_names)) for a (H, W) grid of 10 m pixels.

    Classes come from the arg-max of one smooth field per class plus a random per-scene bias (so
    class shares vary between scenes); ``scale_px`` is the typical size of a land-cover region.
    """
    if season not in SEASON_VIGOUR:
        raise ValueError(f"season {season!r} is not one of {sorted(SEASON_VIGOUR)}")
    region_scale = (1.6, 1.0, 1.0, 0.5)  # lakes larger, urban blocks smaller
    bias = (
        rng.normal(-0.9, 0.5),
        rng.normal(0.4, 0.4),
        rng.normal(0.0, 0.4),
        rng.normal(-0.7, 0.5),
    )
    score = np.stack(
        [
            fractal_field(rng, shape, scale_px * s, roughness=1.0) + np.float32(b)
            for s, b in zip(region_scale, bias, strict=True)
        ]
    )
    classes = np.argmax(score, axis=0).astype(np.uint8)
    del score
    texture = fractal_field(rng, shape, scale_px / 4.0, roughness=0.9)
    vigour = fractal_field(rng, shape, scale_px / 2.0, roughness=1.0)
    fine = unit_noise(rng, shape)  # 10 m detail the SAR does not carry

    relief = TEXTURE_AMPLITUDE[classes] * texture  # relative brightness, per class amplitude
    green = np.clip(SEASON_VIGOUR[season] + 0.2 * vigour, 0.0, 1.0)
    is_vegetation = classes == VEGETATION
    relief += np.float32(0.025) * fine
    positions = band_positions(band_names)
    reflectance = np.empty((*shape, len(positions)), dtype=np.float32)
    for i, k in enumerate(positions):
        band = CLASS_SPECTRA[:, k][classes]
        band[is_vegetation] = (
            green[is_vegetation] * CLASS_SPECTRA[VEGETATION, k]
            + (1.0 - green[is_vegetation]) * DRY_VEGETATION[k]
        )
        band *= np.float32(1.0) + TEXTURE_WEIGHT[k] * relief
        reflectance[..., i] = ndimage.gaussian_filter(band, float(BLUR_SIGMA_PX[k]))
    return Ground(classes, reflectance, texture, vigour, season, tuple(band_names))


def unit_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform noise with mean 0 and variance 1, float32 ``shape`` (several times cheaper to draw
    than Gaussian noise, and indistinguishable as sensor noise)."""
    noise = rng.random(shape, dtype=np.float32)
    noise -= np.float32(0.5)
    noise *= np.float32(math.sqrt(12.0))
    return noise


def band_positions(band_names: Sequence[str]) -> list[int]:
    return band_indices(band_names, S2_BAND_NAMES)


def observe_optical(
    rng: np.random.Generator,
    reflectance: np.ndarray,
    gain_sigma: float = 0.0,
    noise: float = 0.002,
) -> np.ndarray:
    """One acquisition of the ground: per-band gain ~ N(1, gain_sigma) and additive noise.

    reflectance: float32 (H, W, C), any bands; returns a new float32 (H, W, C) array.
    """
    gains = rng.normal(1.0, gain_sigma, reflectance.shape[-1]).astype(np.float32)
    out = reflectance * gains
    out += np.float32(noise) * unit_noise(rng, out.shape)
    return out


def reflectance_to_dn(reflectance: np.ndarray) -> np.ndarray:
    """Reflectance -> uint16 DN (x 10000), rounded, clipped to [1, 65535] (0 is kept for nodata)."""
    dn = np.asarray(reflectance, dtype=np.float32) * np.float32(REFLECTANCE_SCALE)
    np.clip(dn, np.float32(1.0), np.float32(np.iinfo(np.uint16).max), out=dn)
    dn += np.float32(0.5)  # round half up on the way to integers
    return dn.astype(np.uint16)
