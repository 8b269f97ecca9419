"""Clip/scale of optical and SAR values as DSen2-CR does it, and the exact inverses.

Optical: DN (reflectance x 10000) clipped to [0, 10000] and divided by 2000 -> [0, 5].
SAR: VV clipped to [-25, 0] dB, VH to [-32.5, 0] dB, shifted and scaled to [0, 2].
Arrays are channels_last (..., H, W, C); SAR channels are (VV, VH).
"""

from __future__ import annotations

import numpy as np

OPTICAL_CLIP_DN: tuple[float, float] = (0.0, 10000.0)
"""Valid optical range in DN (reflectance x 10000)."""

OPTICAL_SCALE = 2000.0
"""DN per model unit: optical model values = clipped DN / 2000, in [0, 5]."""

REFLECTANCE_SCALE = 10000.0
"""DN per unit of reflectance (metrics are reported on reflectance, DN / 10000)."""

SAR_CLIP_DB: tuple[tuple[float, float], ...] = ((-25.0, 0.0), (-32.5, 0.0))
"""Clip range in dB for (VV, VH)."""

MAX_VAL_SAR = 2.0
"""Upper end of the normalised SAR range: model SAR values lie in [0, 2]."""


def normalise_optical(dn: np.ndarray) -> np.ndarray:
    """Optical DN (..., C) -> model units float32 in [0, 5]."""
    lo, hi = OPTICAL_CLIP_DN
    return (np.clip(np.asarray(dn, dtype=np.float32), lo, hi) / OPTICAL_SCALE).astype(np.float32)


def denormalise_optical(values: np.ndarray) -> np.ndarray:
    """Model units (..., C) -> optical DN as float32 (not clipped, not rounded)."""
    return (np.asarray(values, dtype=np.float32) * OPTICAL_SCALE).astype(np.float32)


def optical_to_dn_uint16(values: np.ndarray) -> np.ndarray:
    """Model units -> uint16 DN, clipped to the valid optical range and rounded."""
    lo, hi = OPTICAL_CLIP_DN
    return np.clip(np.rint(denormalise_optical(values)), lo, hi).astype(np.uint16)


def _sar_bounds(n_channels: int) -> tuple[np.ndarray, np.ndarray]:
    if n_channels != len(SAR_CLIP_DB):
        raise ValueError(f"SAR has {n_channels} channels, expected {len(SAR_CLIP_DB)} (VV, VH)")
    lo = np.array([b[0] for b in SAR_CLIP_DB], dtype=np.float32)
    hi = np.array([b[1] for b in SAR_CLIP_DB], dtype=np.float32)
    return lo, hi


def normalise_sar(db: np.ndarray) -> np.ndarray:
    """SAR backscatter in dB (..., 2) -> float32 in [0, MAX_VAL_SAR]."""
    db = np.asarray(db, dtype=np.float32)
    lo, hi = _sar_bounds(db.shape[-1])
    return ((np.clip(db, lo, hi) - lo) / (hi - lo) * MAX_VAL_SAR).astype(np.float32)


def denormalise_sar(values: np.ndarray) -> np.ndarray:
    """Normalised SAR (..., 2) -> dB (exact inverse on the clipped range)."""
    values = np.asarray(values, dtype=np.float32)
    lo, hi = _sar_bounds(values.shape[-1])
    return (values / MAX_VAL_SAR * (hi - lo) + lo).astype(np.float32)


def dn_to_reflectance(dn: np.ndarray) -> np.ndarray:
    """DN -> top-of-atmosphere reflectance (float32, DN / 10000)."""
    return (np.asarray(dn, dtype=np.float32) / REFLECTANCE_SCALE).astype(np.float32)
