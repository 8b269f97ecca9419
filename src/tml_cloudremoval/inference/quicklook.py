"""Before/after true-colour quicklook of a cleaned scene (PNG), read at reduced resolution.

Both images are read decimated (at most ``max_size`` pixels a side, GDAL nearest resampling,
which keeps nodata pixels distinct; a full 10980 px tile costs no more memory than the
quicklook) and shown with the same stretch: reflectance 0 .. the 98th percentile of the
cloud-free result's RGB, so clouds in the input saturate to white and colours stay comparable.
Nodata pixels are transparent. When the run wrote uncertainty rasters (an aleatoric model, an
ensemble) each gets a panel beside the result: the mean over its bands of the standard
deviation, in reflectance, 0 .. its 98th percentile, with a colour bar.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from matplotlib.figure import Figure
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning

from tml_cloudremoval.atomic import atomic_file
from tml_cloudremoval.bands import RGB_BAND_NAMES, TML_BAND_NAMES, band_indices
from tml_cloudremoval.inference.reader import (
    band_names_from_descriptions,
    inspect_optical,
    nodata_mask,
)
from tml_cloudremoval.normalise import dn_to_reflectance
from tml_cloudremoval.raster import read_header


def read_rgb(path: str | os.PathLike, max_size: int = 1024) -> tuple[np.ndarray, np.ndarray | None]:
    """True-colour bands (B4, B3, B2) of an optical GeoTIFF, decimated to <= ``max_size`` px.

    Returns (reflectance (h, w, 3) float32, valid (h, w) bool or None). The TML bands are found
    as for inference (band descriptions, else the band count: 10 TML or 13 L1C bands); a file
    whose descriptions name B4 B3 B2 alone (the 10 m file of the native layout) is read too.
    """
    path = Path(path)
    is_tiff = path.is_file() and path.suffix.lower() in (".tif", ".tiff")
    header = read_header(path) if is_tiff else None  # else a product (.SAFE, zip, TML folder)
    names = None if header is None else band_names_from_descriptions(header.descriptions)
    source = None
    if names is not None and set(RGB_BAND_NAMES) <= set(names) and len(names) < 10:
        info: Any = header
        rgb = [names.index(b) + 1 for b in RGB_BAND_NAMES]
    else:
        info = inspect_optical(path)
        source = info.source  # a product: its 10 m VRT
        rgb = [info.band_indexes[i] + 1 for i in band_indices(RGB_BAND_NAMES, TML_BAND_NAMES)]
    factor = max(1, math.ceil(max(info.height, info.width) / max_size))
    shape = (3, math.ceil(info.height / factor), math.ceil(info.width / factor))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(info.path if source is None else source) as ds:
            # nearest keeps nodata pixels distinct; average would blend them into their neighbours
            data = ds.read(indexes=rgb, out_shape=shape, resampling=Resampling.nearest)
    data = np.moveaxis(data, 0, -1)
    bad = nodata_mask(data, info.nodata)
    return dn_to_reflectance(np.nan_to_num(data)), None if bad is None else ~bad


def _rgba(reflectance: np.ndarray, valid: np.ndarray | None, top: float) -> np.ndarray:
    rgba = np.ones((*reflectance.shape[:2], 4), dtype=np.float32)
    rgba[..., :3] = np.clip(reflectance / top, 0.0, 1.0)
    if valid is not None:
        rgba[..., 3] = valid
    return rgba


def read_uncertainty(path: str | os.PathLike, max_size: int = 1024) -> np.ndarray:
    """The mean over its bands of an uncertainty raster (``inference.predictors``: standard
    deviations in reflectance), decimated to <= ``max_size`` px: (h, w) float32, NaN where
    nodata."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            factor = max(1, math.ceil(max(ds.height, ds.width) / max_size))
            shape = (ds.count, math.ceil(ds.height / factor), math.ceil(ds.width / factor))
            data = ds.read(out_shape=shape, resampling=Resampling.nearest).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN pixel: nodata, stays NaN
        return np.nanmean(data, axis=0)


PANEL_TITLES = {
    "aleatoric": "predicted std. dev. (aleatoric)",
    "epistemic": "ensemble spread (epistemic)",
}
"""Titles of the uncertainty panels, by part (``inference.predictors``)."""


def _uncertainty_panel(fig: Figure, ax: Any, path: Path, label: str, max_size: int) -> None:
    """One uncertainty raster: the band mean, 0 .. its 98th percentile, with a colour bar."""
    values = read_uncertainty(path, max_size)
    shown = values[np.isfinite(values)]
    top = float(np.percentile(shown, 98)) if shown.size else 0.0
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap="magma", vmin=0.0, vmax=max(top, 1e-6),
        interpolation="nearest",
    )  # fmt: skip
    ax.set_title(f"{label}: {path.name}\nmean of the bands", fontsize=9)
    ax.set_axis_off()
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_label("standard deviation, reflectance", fontsize=8)


def quicklook_figure(
    before_path: str | os.PathLike,
    after_path: str | os.PathLike,
    max_size: int = 1024,
    title: str | None = None,
    uncertainty: Mapping[str, str | os.PathLike] | None = None,
) -> Figure:
    """Side-by-side true colour of the cloudy input and the cloud-free output (same stretch),
    then a panel per uncertainty raster in ``uncertainty`` ({part: path}, ``aleatoric`` /
    ``epistemic``): the mean of its bands in reflectance, with a colour bar."""
    extras = {part: Path(p) for part, p in (uncertainty or {}).items()}
    before, before_ok = read_rgb(before_path, max_size)
    after, after_ok = read_rgb(after_path, max_size)
    shown = after if after_ok is None else after[after_ok]
    top = float(np.percentile(shown, 98)) if shown.size else 0.3
    top = top if top > 0 else 0.3
    aspect = before.shape[0] / before.shape[1]
    panels = 2 + len(extras)
    fig = Figure(figsize=(6 * panels, 6 * aspect + 0.8), dpi=100, layout="constrained")
    axes = fig.subplots(1, panels)
    for ax, image, ok, label in (
        (axes[0], before, before_ok, f"before: {Path(before_path).name}"),
        (axes[1], after, after_ok, f"after: {Path(after_path).name}"),
    ):
        ax.imshow(_rgba(image, ok, top), interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    for ax, (part, path) in zip(axes[2:], extras.items(), strict=True):
        _uncertainty_panel(fig, ax, path, PANEL_TITLES.get(part, part), max_size)
    fig.suptitle(title or f"true colour (B4 B3 B2), reflectance 0-{top:.2f}", fontsize=10)
    return fig


def write_quicklook(
    before_path: str | os.PathLike,
    after_path: str | os.PathLike,
    png_path: str | os.PathLike,
    max_size: int = 1024,
    uncertainty: Mapping[str, str | os.PathLike] | None = None,
) -> Path:
    """Write :func:`quicklook_figure` as a PNG, atomically (``atomic.atomic_file``)."""
    fig = quicklook_figure(before_path, after_path, max_size, uncertainty=uncertainty)
    with atomic_file(png_path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(png_path)


class Quicklook:
    """A before/after quicklook not yet drawn: :meth:`write` draws it into a PNG.

    ``sources`` are the GeoTIFFs it shows (the dataset refuses to write over them);
    ``uncertainty``: {part: uncertainty raster} drawn beside them.
    """

    def __init__(
        self,
        before_path: str | os.PathLike,
        after_path: str | os.PathLike,
        max_size: int,
        uncertainty: Mapping[str, str | os.PathLike] | None = None,
    ) -> None:
        self.before_path, self.after_path = Path(before_path), Path(after_path)
        self.max_size = int(max_size)
        self.uncertainty = {part: Path(p) for part, p in (uncertainty or {}).items()}

    @property
    def sources(self) -> tuple[Path, ...]:
        return (self.before_path, self.after_path, *self.uncertainty.values())

    def write(self, path: str | os.PathLike) -> Path:
        return write_quicklook(
            self.before_path, self.after_path, path, self.max_size, self.uncertainty
        )

    def __repr__(self) -> str:
        return f"Quicklook({self.before_path.name} -> {self.after_path.name})"


def quicklooks_of(
    befores: Mapping[str, str | os.PathLike],
    afters: Mapping[str, str | os.PathLike],
    max_size: int,
    uncertainty: Mapping[str, Mapping[str, str | os.PathLike]] | None = None,
) -> dict[str, Quicklook]:
    """Lazy quicklooks {scene_id: Quicklook} of the scenes in ``afters`` (cloud-free products),
    each beside its cloudy input in ``befores`` and with its uncertainty rasters
    (``uncertainty``: {scene_id: {part: path}})."""
    extras = uncertainty or {}
    return {
        sid: Quicklook(befores[sid], after, max_size, extras.get(sid))
        for sid, after in afters.items()
    }
