"""Image-quality metrics for cloud removal, on top-of-atmosphere reflectance.

All metrics work on reflectance (DN / 10000) clipped to [0, 1], the valid optical range of the
model (see :func:`to_reflectance`). Arrays are channels_last: one patch (H, W, C) or a batch
(B, H, W, C); masks are (H, W) or (B, H, W) with 1 = cloud or cloud shadow.

Definitions (P prediction, T target, both reflectance, e = P - T):

- MAE  = mean |e| over pixels and bands.
- RMSE = sqrt(mean e^2) over pixels and bands; per-band RMSE over pixels of one band.
- PSNR = 20 log10(1 / RMSE) dB (peak 1, the data range); undefined (``None``) when RMSE = 0.
- SSIM: Wang et al. 2004 with an 11 x 11 Gaussian window, sigma 1.5, data range 1,
  K1 = 0.01, K2 = 0.03, computed per band and averaged over bands: the definition of
  ``tf.image.ssim``, computed here in float64 numpy (separable Gaussian filter), so evaluation
  needs no TensorFlow. It agrees with a plain float64 implementation to 1e-7 and with
  ``tf.image.ssim`` to 3e-5 per map pixel on real patches (TF's float32 rounding; the mean
  SSIM of a patch to 1e-6), tested. The
  SSIM *map* is only defined where the whole window lies inside the patch ("valid"), so pixels
  within 5 px of the patch border do not take part; the SSIM of a region (covered / clear) is
  the mean of the map over the region's interior pixels.
- SAM: the angle between the predicted and the target spectrum of a pixel, in degrees,
  averaged over pixels. Two zero spectra count 0 deg; a zero spectrum against a non-zero one
  counts 90 deg (the largest angle two non-negative spectra can have).

Regions: ``all`` pixels, ``covered`` (mask == 1, cloud or shadow) and ``clear`` (mask == 0).

Aggregation over many patches pools the pixels: sums of |e|, e^2, angles and SSIM-map values
are accumulated, and the figures are computed once from the totals (MAE = sum |e| / n, RMSE and
PSNR from the pooled MSE, SSIM = sum of map values / number of map pixels). Every pixel weighs
the same, so a patch with 10 covered pixels does not count as much as one with 60000. (Papers
often average per-image figures instead: :mod:`tml_cloudremoval.evaluation.protocol` does, from
the per-patch figures.) A region with no pixel has no figure: ``None``, never NaN or a division
by zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.normalise import OPTICAL_CLIP_DN, dn_to_reflectance

REGIONS: tuple[str, ...] = ("all", "covered", "clear")
"""Pixel sets every metric is reported on."""

SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5
SSIM_DATA_RANGE = 1.0
SSIM_BORDER = SSIM_FILTER_SIZE // 2
"""Pixels at each patch edge without a full SSIM window (5)."""

METRIC_NAMES: tuple[str, ...] = ("mae", "rmse", "psnr", "ssim", "sam_deg")


def to_reflectance(dn: np.ndarray) -> np.ndarray:
    """Optical DN (..., C), any dtype -> reflectance float32 clipped to [0, 1]."""
    lo, hi = OPTICAL_CLIP_DN
    return dn_to_reflectance(np.clip(np.asarray(dn, dtype=np.float32), lo, hi))


def _as_batch(image: np.ndarray, ndim_single: int) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == ndim_single:
        return image[np.newaxis]
    if image.ndim != ndim_single + 1:
        raise ValueError(f"expected {ndim_single} or {ndim_single + 1} dims, got {image.shape}")
    return image


def _check_pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _as_batch(pred, 3), _as_batch(target, 3)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    return pred, target


def sam_degrees(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Spectral angle per pixel in degrees: (..., C), (..., C) -> (...), float64.

    Uses 2 atan2(|u - v|, |u + v|) on the unit spectra u, v (accurate for tiny angles, unlike
    acos of the cosine). Both spectra zero -> 0 deg; exactly one zero -> 90 deg. Never NaN for
    finite input.
    """
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from target shape {t.shape}")
    pn = np.linalg.norm(p, axis=-1, keepdims=True)
    tn = np.linalg.norm(t, axis=-1, keepdims=True)
    u = np.divide(p, pn, out=np.zeros_like(p), where=pn > 0)
    v = np.divide(t, tn, out=np.zeros_like(t), where=tn > 0)
    angle = 2.0 * np.arctan2(np.linalg.norm(u - v, axis=-1), np.linalg.norm(u + v, axis=-1))
    p_zero, t_zero = pn[..., 0] == 0, tn[..., 0] == 0
    angle = np.where(p_zero & t_zero, 0.0, angle)
    angle = np.where(p_zero ^ t_zero, np.pi / 2, angle)
    return np.degrees(angle)


def _gaussian_window() -> np.ndarray:
    """The normalised 1-D Gaussian of the SSIM window (size 11, sigma 1.5), float64; the 2-D
    window of ``tf.image.ssim`` is its outer product with itself."""
    r = np.arange(SSIM_FILTER_SIZE, dtype=np.float64) - (SSIM_FILTER_SIZE - 1) / 2
    g = np.exp(-(r**2) / (2 * SSIM_FILTER_SIGMA**2))
    return g / g.sum()


def _filter_valid(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable "valid" filtering of (..., H, W, C) by ``g`` along H and W:
    (..., H - n + 1, W - n + 1, C), n = len(g)."""
    n = len(g)
    rows = sliding_window_view(a, n, axis=-3) @ g
    return sliding_window_view(rows, n, axis=-2) @ g


def ssim_map(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Local SSIM, averaged over bands: (B, H, W, C) or (H, W, C) -> (B, H - 10, W - 10) float32.

    ``tf.image.ssim(..., max_val=1, filter_size=11, filter_sigma=1.5, return_index_map=True)``
    in float64 numpy, one patch at a time; map pixel (i, j) belongs to image pixel (i + 5,
    j + 5), the centre of its window.
    """
    pred, target = _check_pair(pred, target)
    if min(pred.shape[1:3]) < SSIM_FILTER_SIZE:
        raise ValueError(f"SSIM needs patches of at least {SSIM_FILTER_SIZE} px, got {pred.shape}")
    g = _gaussian_window()
    c1 = (0.01 * SSIM_DATA_RANGE) ** 2
    c2 = (0.03 * SSIM_DATA_RANGE) ** 2
    b, h, w = pred.shape[:3]
    out = np.empty((b, h - 2 * SSIM_BORDER, w - 2 * SSIM_BORDER))
    for i in range(b):
        x = pred[i].astype(np.float64)
        y = target[i].astype(np.float64)
        mx, my, xx, yy, xy = _filter_valid(np.stack([x, y, x * x, y * y, x * y]), g)
        luminance = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
        contrast_structure = (2 * (xy - mx * my) + c2) / (xx - mx**2 + yy - my**2 + c2)
        out[i] = (luminance * contrast_structure).mean(axis=-1)
    return out.astype(np.float32)


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean SSIM of one patch or a batch (all map pixels weigh the same)."""
    return float(np.mean(ssim_map(pred, target), dtype=np.float64))


@dataclass(frozen=True)
class RegionSums:
    """Sums over the pixels of one region, one row per patch (leading axis B).

    ``n_pixels`` (B,) pixels in the region; ``abs_err`` / ``sq_err`` (B,) sums of |e| and e^2 over
    pixels and bands; ``band_sq_err`` (B, C) sums of e^2 per band; ``sam_deg`` (B,) sum of the
    per-pixel angles; ``ssim`` (B,) sum of SSIM-map values over the region's interior pixels;
    ``n_pixels_ssim`` (B,) how many those are.
    """

    n_pixels: np.ndarray
    abs_err: np.ndarray
    sq_err: np.ndarray
    band_sq_err: np.ndarray
    sam_deg: np.ndarray
    ssim: np.ndarray
    n_pixels_ssim: np.ndarray

    def total(self) -> RegionSums:
        """Sums over all patches, as a single-row RegionSums."""
        return RegionSums(
            **{f.name: getattr(self, f.name).sum(axis=0, keepdims=True) for f in fields(self)}
        )

    def __add__(self, other: RegionSums) -> RegionSums:
        return RegionSums(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def row(self, i: int) -> RegionSums:
        return RegionSums(**{f.name: getattr(self, f.name)[i : i + 1] for f in fields(self)})


def region_weights(mask: np.ndarray) -> dict[str, np.ndarray]:
    """(B, H, W) mask (1 cloud/shadow) -> float64 weights per region (1 inside, 0 outside)."""
    covered = np.asarray(mask) != 0
    return {
        "all": np.ones(covered.shape, dtype=np.float64),
        "covered": covered.astype(np.float64),
        "clear": (~covered).astype(np.float64),
    }


def patch_sums(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, RegionSums]:
    """Per-patch sums for each region.

    ``pred``, ``target``: reflectance (B, H, W, C) or (H, W, C) (use :func:`to_reflectance`);
    ``mask``: (B, H, W) or (H, W), 1 = cloud or shadow. Returns {region: RegionSums}.
    """
    pred, target = _check_pair(pred, target)
    mask = _as_batch(mask, 2)
    if mask.shape != pred.shape[:3]:
        raise ValueError(f"mask shape {mask.shape} does not match the image shape {pred.shape}")
    err = pred.astype(np.float64) - target.astype(np.float64)
    abs_err = np.abs(err)
    sq_err = np.square(err)
    sam = sam_degrees(pred, target)
    smap = ssim_map(pred, target).astype(np.float64)
    b = SSIM_BORDER
    h, w = pred.shape[1:3]
    out = {}
    for region, weight in region_weights(mask).items():
        band_sq = np.einsum("bhw,bhwc->bc", weight, sq_err)
        inner = weight[:, b : h - b, b : w - b]
        out[region] = RegionSums(
            n_pixels=weight.sum(axis=(1, 2)),
            abs_err=np.einsum("bhw,bhwc->b", weight, abs_err),
            sq_err=band_sq.sum(axis=1),
            band_sq_err=band_sq,
            sam_deg=(weight * sam).sum(axis=(1, 2)),
            ssim=(inner * smap).sum(axis=(1, 2)),
            n_pixels_ssim=inner.sum(axis=(1, 2)),
        )
    return out


def psnr_from_mse(mse: float) -> float | None:
    """20 log10(1 / RMSE) = -10 log10(MSE) in dB for data range 1; ``None`` when MSE is 0."""
    return None if mse <= 0 else -10.0 * math.log10(mse)


def figures(sums: RegionSums, i: int = 0) -> dict[str, float | int | None] | None:
    """MAE, RMSE, PSNR, SSIM, SAM (deg) and counts from row ``i`` of ``sums``.

    ``None`` when the region holds no pixel; ``psnr`` is ``None`` when RMSE is 0 and ``ssim``
    is ``None`` when no region pixel has a full SSIM window.
    """
    n = float(sums.n_pixels[i])
    if n == 0:
        return None
    n_values = n * sums.band_sq_err.shape[1]
    mse = float(sums.sq_err[i]) / n_values
    n_ssim = float(sums.n_pixels_ssim[i])
    return {
        "mae": float(sums.abs_err[i]) / n_values,
        "rmse": math.sqrt(mse),
        "psnr": psnr_from_mse(mse),
        "ssim": float(sums.ssim[i]) / n_ssim if n_ssim > 0 else None,
        "sam_deg": float(sums.sam_deg[i]) / n,
        "n_pixels": int(n),
        "n_pixels_ssim": int(n_ssim),
    }


def per_band_rmse(
    sums: RegionSums, band_names: Sequence[str] = TML_BAND_NAMES, i: int = 0
) -> dict[str, float] | None:
    """{band: RMSE} from row ``i``; ``None`` when the region holds no pixel."""
    n = float(sums.n_pixels[i])
    if n == 0:
        return None
    if len(band_names) != sums.band_sq_err.shape[1]:
        raise ValueError(f"{len(band_names)} band names for {sums.band_sq_err.shape[1]} bands")
    rmse = np.sqrt(sums.band_sq_err[i] / n)
    return {name: float(value) for name, value in zip(band_names, rmse, strict=True)}


class MetricAccumulator:
    """Streaming totals of :class:`RegionSums` per region; memory independent of the patch count."""

    def __init__(self, band_names: Sequence[str] = TML_BAND_NAMES) -> None:
        self.band_names = tuple(band_names)
        self._totals: dict[str, RegionSums] = {}
        self._patches: dict[str, int] = dict.fromkeys(REGIONS, 0)

    def add(self, sums: Mapping[str, RegionSums]) -> None:
        """Add the per-patch sums of one batch (as :func:`patch_sums` returns them)."""
        for region in REGIONS:
            batch = sums[region]
            total = batch.total()
            self._totals[region] = (
                total if region not in self._totals else (self._totals[region] + total)
            )
            self._patches[region] += int(np.count_nonzero(batch.n_pixels))

    def result(self) -> dict[str, Any]:
        """{"all": figures | None, "covered": .., "clear": .., "per_band_rmse": {band: ..},
        "per_band_rmse_covered": .., "per_band_rmse_clear": ..}; each region's figures carry
        ``n_patches`` (patches with at least one pixel in the region)."""
        if not self._totals:
            raise ValueError("no patch was added")
        out: dict[str, Any] = {}
        for region in REGIONS:
            values = figures(self._totals[region])
            if values is not None:
                counts = {"n_patches": self._patches[region]}
                values = (
                    {k: v for k, v in values.items() if not k.startswith("n_")}
                    | counts
                    | {k: v for k, v in values.items() if k.startswith("n_")}
                )
            out[region] = values
        for region in REGIONS:
            key = "per_band_rmse" if region == "all" else f"per_band_rmse_{region}"
            out[key] = per_band_rmse(self._totals[region], self.band_names)
        return out
