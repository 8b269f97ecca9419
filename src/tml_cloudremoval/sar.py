"""Sentinel-1 backscatter onto the 40 m grid of the TML product.

Training (SEN12MS-CR, 10 m patches): each aligned 4 x 4 block of 10 m pixels is averaged into one
40 m pixel. Inference (TML scenes): SAR of any resolution and CRS is warped with average
resampling onto the 40 m grid aligned with the 10 m optical grid, so both see the same information.

Averaging can be done on the dB values (``"mean"``, what the DSen2-CR retraining seed does) or in
linear power, converted back to dB afterwards (``"linear_power"``, the physically usual multilook).
Arrays are channels_last: (H, W, C) with channels (VV, VH) in dB.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Literal

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window, from_bounds

from tml_cloudremoval.bands import S1_BAND_NAMES, SAR_FACTOR

SarMethod = Literal["mean", "linear_power"]
SAR_METHODS: tuple[str, ...] = ("mean", "linear_power")


def _check_method(method: str) -> None:
    if method not in SAR_METHODS:
        raise ValueError(f"unknown SAR averaging method {method!r}; use one of {SAR_METHODS}")


def db_to_linear(db: np.ndarray) -> np.ndarray:
    """Backscatter in dB -> linear power (float32); NaN stays NaN."""
    return np.power(np.float32(10.0), np.asarray(db, dtype=np.float32) / np.float32(10.0))


def linear_to_db(power: np.ndarray) -> np.ndarray:
    """Linear power -> dB (float32); NaN stays NaN, zero power gives -inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.float32(10.0) * np.log10(np.asarray(power, dtype=np.float32))).astype(np.float32)


def sar_to_40m(
    sar_db: np.ndarray, method: SarMethod = "mean", factor: int = SAR_FACTOR
) -> np.ndarray:
    """Average each aligned ``factor`` x ``factor`` block: (H, W, C) dB -> (H/f, W/f, C) dB.

    NaN pixels are ignored; a block that is entirely NaN stays NaN. H and W must be multiples
    of ``factor`` (blocks are aligned to the array origin, i.e. to the 40 m grid).
    """
    _check_method(method)
    sar_db = np.asarray(sar_db, dtype=np.float32)
    if sar_db.ndim != 3:
        raise ValueError(f"SAR must be (H, W, C), got shape {sar_db.shape}")
    height, width, channels = sar_db.shape
    if height % factor or width % factor:
        raise ValueError(
            f"SAR size {height} x {width} is not a multiple of {factor}: "
            "crop to the 40 m grid before averaging"
        )
    values = db_to_linear(sar_db) if method == "linear_power" else sar_db
    blocks = values.reshape(height // factor, factor, width // factor, factor, channels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks -> NaN, on purpose
        mean = np.nanmean(blocks, axis=(1, 3))
    return linear_to_db(mean) if method == "linear_power" else mean.astype(np.float32)


def fill_nan_with_channel_mean(image: np.ndarray) -> np.ndarray:
    """Replace NaN in each channel of (H, W, C) by that channel's mean (DSen2-CR's rule).

    Raises ``ValueError`` when a channel holds no finite value at all.
    """
    image = np.asarray(image, dtype=np.float32)
    nan = np.isnan(image)
    if not nan.any():
        return image
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(image, axis=tuple(range(image.ndim - 1)))
    empty = [i for i, m in enumerate(np.atleast_1d(means)) if not np.isfinite(m)]
    if empty:
        raise ValueError(f"channel(s) {empty} hold no finite value: nothing to fill NaN with")
    return np.where(nan, means.astype(np.float32), image)


def grid_40m(transform_10m: Affine, height: int, width: int) -> tuple[Affine, int, int]:
    """The 40 m grid aligned with a 10 m grid: (transform, height, width).

    Its origin is the 10 m grid's origin; it covers the whole 10 m grid (ceil division).
    """
    transform = transform_10m @ Affine.scale(SAR_FACTOR)
    return transform, math.ceil(height / SAR_FACTOR), math.ceil(width / SAR_FACTOR)


def _source_window(src: rasterio.DatasetReader, bounds: tuple[float, ...]) -> Window | None:
    """Window of ``src`` under ``bounds`` (in ``src.crs``) plus 2 pixels of margin; None if none."""
    left, bottom, right, top = bounds
    sl, sb, sr, st = src.bounds
    if left >= sr or right <= sl or bottom >= st or top <= sb:
        return None
    window = from_bounds(left, bottom, right, top, transform=src.transform)
    window = window.round_offsets().round_lengths()
    margin = Window(window.col_off - 2, window.row_off - 2, window.width + 4, window.height + 4)
    return margin.intersection(Window(0, 0, src.width, src.height))


def warp_sar_to_grid(
    src_path: str | os.PathLike,
    dst_crs: rasterio.crs.CRS | str,
    dst_transform: Affine,
    dst_height: int,
    dst_width: int,
    method: SarMethod = "mean",
    strip_rows: int = 256,
) -> np.ndarray:
    """Average a VV/VH GeoTIFF of any resolution and CRS onto a target grid: (h, w, 2) dB.

    Uses GDAL's average resampling (``rasterio.warp.reproject``). Pixels the source does not
    cover, or covers only with nodata, are NaN. The target is filled in strips of ``strip_rows``
    rows, each reading only the source window under it, so memory stays bounded for a 10 m SAR
    file covering a whole Sentinel-2 tile. Raises ``ValueError`` naming the file when it does
    not hold 2 bands, has no georeferencing, or does not overlap the target grid.
    """
    _check_method(method)
    if strip_rows < 1:
        raise ValueError(f"strip_rows must be >= 1, got {strip_rows}")
    out = np.full((len(S1_BAND_NAMES), dst_height, dst_width), np.nan, dtype=np.float32)
    with rasterio.open(src_path) as src:
        _check_source(src, src_path, dst_crs, dst_transform, dst_height, dst_width)
        for row in range(0, dst_height, strip_rows):
            rows = min(strip_rows, dst_height - row)
            strip_transform = dst_transform @ Affine.translation(0, row)
            strip_bounds = rasterio.transform.array_bounds(rows, dst_width, strip_transform)
            window = _source_window(src, transform_bounds(dst_crs, src.crs, *strip_bounds))
            if window is not None:
                _warp_strip(src, window, out[:, row : row + rows], strip_transform, dst_crs, method)
    if method == "linear_power":
        out = linear_to_db(out)
    return np.moveaxis(out, 0, -1)


def _check_source(
    src: rasterio.DatasetReader,
    src_path: str | os.PathLike,
    dst_crs: rasterio.crs.CRS | str,
    dst_transform: Affine,
    dst_height: int,
    dst_width: int,
) -> None:
    """``ValueError`` naming the file unless it holds 2 bands, a CRS, and overlaps the grid."""
    if src.count != len(S1_BAND_NAMES):
        raise ValueError(
            f"{src_path}: SAR file has {src.count} bands, expected {len(S1_BAND_NAMES)} "
            f"({', '.join(S1_BAND_NAMES)} in dB)"
        )
    if src.crs is None:
        raise ValueError(f"{src_path}: SAR file has no CRS; cannot place it on the scene")
    dst_bounds = rasterio.transform.array_bounds(dst_height, dst_width, dst_transform)
    if _source_window(src, transform_bounds(dst_crs, src.crs, *dst_bounds)) is None:
        raise ValueError(
            f"{src_path}: SAR footprint {tuple(round(v, 1) for v in src.bounds)} "
            f"({src.crs}) does not overlap the optical scene"
        )


def _warp_strip(
    src: rasterio.DatasetReader,
    window: Window,
    strip: np.ndarray,
    strip_transform: Affine,
    dst_crs: rasterio.crs.CRS | str,
    method: SarMethod,
) -> None:
    """Average the source ``window`` into ``strip`` (C, rows, W), in place (linear power for
    ``"linear_power"``); source nodata and NaN pixels are left out of each average."""
    data = src.read(window=window, out_dtype=np.float32)
    if src.nodata is not None and not np.isnan(src.nodata):
        data[data == np.float32(src.nodata)] = np.nan
    if method == "linear_power":
        data = db_to_linear(data)
    reproject(
        source=data,
        destination=strip,
        src_transform=src.window_transform(window),
        src_crs=src.crs,
        src_nodata=np.nan,
        dst_transform=strip_transform,
        dst_crs=dst_crs,
        dst_nodata=np.nan,
        resampling=Resampling.average,
        # Per-band nodata: a NaN pixel is left out of its block's average instead of
        # making the whole average NaN.
        UNIFIED_SRC_NODATA="NO",
    )
