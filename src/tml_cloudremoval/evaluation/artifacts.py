"""Reconstruction artifacts under clouds: high-frequency energy and per-band bias.

Speckle, colour noise and block steps are texture the target does not have. They are measured
on the covered pixels (mask 1) in reflectance:

- ``hf_energy_ratio_covered``: the mean squared high-pass of the prediction over the same of the
  target, the high-pass being ``x - gaussian(x, sigma = HF_SIGMA_PX)`` per band (spatial axes
  only). 1 = as much fine texture as the target; above 1 = added noise; below 1 = blur.
- ``bias_covered``: per band, the mean of prediction - target (pooled pixels).

Accumulated batch by batch (sums), so memory does not grow with the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from tml_cloudremoval.bands import TML_BAND_NAMES

__all__ = ["HF_SIGMA_PX", "ArtifactAccumulator", "high_pass"]

HF_SIGMA_PX = 1.0
"""Standard deviation in 10 m px of the Gaussian whose residual is the high-pass."""


def high_pass(image: np.ndarray, sigma: float = HF_SIGMA_PX) -> np.ndarray:
    """``image - gaussian(image)`` of one (H, W, C) image, spatial axes only, float64."""
    image = np.asarray(image, dtype=np.float64)
    return image - gaussian_filter(image, sigma=(sigma, sigma, 0.0), mode="reflect")


class ArtifactAccumulator:
    """Sums over the covered pixels of batches of (B, H, W, C) reflectance and (B, H, W) masks."""

    def __init__(self, band_names: Sequence[str] = TML_BAND_NAMES) -> None:
        self.band_names = list(band_names)
        self.hf_pred = 0.0
        self.hf_target = 0.0
        self.bias_sum = np.zeros(len(self.band_names))
        self.n = 0

    def add(self, pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> None:
        for p, t, m in zip(pred, target, np.asarray(mask) != 0, strict=True):
            if not m.any():
                continue
            self.hf_pred += float((high_pass(p)[m] ** 2).sum())
            self.hf_target += float((high_pass(t)[m] ** 2).sum())
            diff = np.asarray(p, np.float64)[m] - np.asarray(t, np.float64)[m]
            self.bias_sum += diff.sum(axis=0)
            self.n += int(m.sum())

    def result(self) -> dict[str, Any]:
        """``{"hf_energy_ratio_covered": float | None, "bias_covered": {band: float} | None}``
        (None without covered pixels, or for the ratio a target without texture)."""
        if self.n == 0:
            return {"hf_energy_ratio_covered": None, "bias_covered": None}
        ratio = self.hf_pred / self.hf_target if self.hf_target > 0 else None
        bias = self.bias_sum / self.n
        return {
            "hf_energy_ratio_covered": ratio,
            "bias_covered": dict(zip(self.band_names, map(float, bias), strict=True)),
        }
