"""``inference.fill: clouds``: keep every clear input pixel, take the prediction under the mask.

Output = input + w (prediction - input), with w = 0 on every pixel the mask does not mark
(clear, or mask unknown: those pixels are the input itself, bit for bit) and, on a marked pixel
at Euclidean distance d (px) from the nearest unmarked one, w = min(d / feather_px, 1): the
prediction ramps in over ``feather_px`` px on the covered side of the mask edge, so no seam
shows and no clear pixel changes (feather_px 0: w = 1 on the whole mask).

The ramp of rows y0..y0+n needs the mask ``feather_px`` rows above and below only (a distance
capped at feather_px cannot see further), so :class:`CloudFillSink` computes it per block of
emitted rows with that halo: the same weights as on the whole image, whatever the tiling.

Uncertainty (``inference.predictors``): rows may carry, after the C channels of the prediction,
variances of the prediction (reflectance²). The input is taken as exact (its own noise is not
modelled), so the variance of input + w (prediction - input) is w² x variance: 0 on every pixel
the input is kept (the observation itself), the model's full variance w = 1 inside the mask, and
w² x variance on the ramp; standard deviations follow w.
Arrays are channels_last (H, W, C), values in model units.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.ndimage import distance_transform_edt

from tml_cloudremoval.inference.engine import EmitRows

ReadRows = Callable[[int, int], np.ndarray]


def fill_weights(mask: np.ndarray, feather_px: int) -> np.ndarray:
    """Weights (H, W) float32 of the prediction for a mask (H, W) uint8 (1 = cloud/shadow)."""
    covered = mask == 1
    if feather_px == 0 or not covered.any() or covered.all():
        return covered.astype(np.float32)
    distance = distance_transform_edt(covered)  # px to the nearest pixel not covered
    return np.minimum(distance / feather_px, 1.0).astype(np.float32)


def blend_clouds(inputs: np.ndarray, prediction: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """inputs + w (prediction - inputs), exactly ``inputs`` where w = 0: (n, w, C) float32."""
    w = weights[..., None]
    out = inputs + w * (prediction - inputs)
    return np.where(w > 0, out, inputs).astype(np.float32, copy=False)


class CloudFillSink:
    """Row sink (``engine.run_tiled``'s ``emit_rows``) that fills only the clouds of the rows it
    is handed, then passes them on to ``emit_rows``.

    ``read_rows(y0, n)`` gives the input rows y0..y0+n (n, W, C) in model units (the same values
    the model was fed); ``mask`` is the scene's (H, W) uint8 mask.
    """

    def __init__(
        self, emit_rows: EmitRows, read_rows: ReadRows, mask: np.ndarray, feather_px: int
    ) -> None:
        self.emit_rows, self.read_rows = emit_rows, read_rows
        self.mask, self.feather_px = mask, feather_px

    def weights(self, y0: int, n: int) -> np.ndarray:
        """Weights of rows y0..y0+n, from the mask rows with a halo of feather_px."""
        lo = max(0, y0 - self.feather_px)
        hi = min(self.mask.shape[0], y0 + n + self.feather_px)
        return fill_weights(self.mask[lo:hi], self.feather_px)[y0 - lo : y0 - lo + n]

    def __call__(self, y0: int, values: np.ndarray, valid: np.ndarray | None) -> None:
        """Fill rows y0..y0+n: ``values`` (n, W, C + k): the prediction, then k variance
        channels (module docstring), scaled by w²."""
        n = values.shape[0]
        inputs = self.read_rows(y0, n)
        weights = self.weights(y0, n)
        bands = inputs.shape[-1]
        filled = blend_clouds(inputs, values[..., :bands], weights)
        if values.shape[-1] > bands:
            variances = values[..., bands:] * np.square(weights)[..., None]
            filled = np.concatenate([filled, variances.astype(np.float32)], axis=-1)
        self.emit_rows(y0, filled, valid)
