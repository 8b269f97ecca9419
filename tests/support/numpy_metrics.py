"""Plain float64 numpy metrics, written apart from the package: the oracles of the metric tests.

Reflectance arrays, channels_last: a patch (H, W, C), a mask (H, W) with 1 = cloud or shadow.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SSIM_SIZE = 11
SSIM_SIGMA = 1.5


def numpy_ssim_map(
    x: np.ndarray, y: np.ndarray, size: int = SSIM_SIZE, sigma: float = SSIM_SIGMA
) -> np.ndarray:
    """Plain float64 SSIM (Wang et al. 2004), Gaussian window, valid part, mean over bands.

    (H, W, C) -> (H - size + 1, W - size + 1).
    """
    c1, c2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    g /= g.sum()

    def local_mean(a: np.ndarray) -> np.ndarray:
        windows = sliding_window_view(a, (size, size), axis=(0, 1))  # (h, w, C, size, size)
        return np.einsum("hwcij,ij->hwc", windows, g)

    x, y = x.astype(np.float64), y.astype(np.float64)
    mx, my = local_mean(x), local_mean(y)
    vx = local_mean(x * x) - mx**2
    vy = local_mean(y * y) - my**2
    cxy = local_mean(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean(axis=-1)


def numpy_patch_figures(
    pred: np.ndarray, target: np.ndarray, mask: np.ndarray
) -> dict[str, dict[str, float] | None]:
    """One patch -> {region: {mae, rmse, psnr, ssim, sam_deg} | None (no pixel)}.

    PSNR = 20 log10(1 / RMSE) (None for RMSE 0); SSIM = mean of the SSIM map over the region's
    pixels at least size // 2 px inside the patch (None where there are none); SAM = mean of
    arccos(cosine) in degrees (spectra here are never zero).
    """
    p, t = pred.astype(np.float64), target.astype(np.float64)
    covered = np.asarray(mask) != 0
    err = p - t
    cosine = (p * t).sum(-1) / (np.linalg.norm(p, axis=-1) * np.linalg.norm(t, axis=-1))
    angle = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    smap = numpy_ssim_map(p, t)
    b = SSIM_SIZE // 2
    out: dict[str, dict[str, float] | None] = {}
    for region, inside in (
        ("all", np.ones_like(covered)),
        ("covered", covered),
        ("clear", ~covered),
    ):
        if not inside.any():
            out[region] = None
            continue
        rmse = math.sqrt(float(np.mean(err[inside] ** 2)))
        inner = inside[b:-b, b:-b]
        out[region] = {
            "mae": float(np.mean(np.abs(err[inside]))),
            "rmse": rmse,
            "psnr": None if rmse == 0 else 20 * math.log10(1 / rmse),
            "ssim": float(smap[inner].mean()) if inner.any() else None,
            "sam_deg": float(angle[inside].mean()),
        }
    return out
