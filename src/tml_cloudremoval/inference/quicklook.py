"""Before/after true-colour quicklook of a cleaned scene (PNG), read at reduced resolution.

Both images are read decimated (at most ``max_size`` pixels a side, GDAL average resampling,
so a full 10980 px tile costs no more memory than the quicklook) and shown with the same
stretch: reflectance 0 .. the 98th percentile of the cloud-free result's RGB, so clouds in the
input saturate to white and colours stay comparable. Nodata pixels are transparent.
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


def quicklook_figure(
    before_path: str | os.PathLike,
    after_path: str | os.PathLike,
    max_size: int = 1024,
    title: str | None = None,
) -> Figure:
    """Side-by-side true colour of the cloudy input and the cloud-free output (same stretch)."""
    before, before_ok = read_rgb(before_path, max_size)
    after, after_ok = read_rgb(after_path, max_size)
    shown = after if after_ok is None else after[after_ok]
    top = float(np.percentile(shown, 98)) if shown.size else 0.3
    top = top if top > 0 else 0.3
    aspect = before.shape[0] / before.shape[1]
    fig = Figure(figsize=(12, 6 * aspect + 0.8), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, image, ok, label in (
        (axes[0], before, before_ok, f"before: {Path(before_path).name}"),
        (axes[1], after, after_ok, f"after: {Path(after_path).name}"),
    ):
        ax.imshow(_rgba(image, ok, top), interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    fig.suptitle(title or f"true colour (B4 B3 B2), reflectance 0-{top:.2f}", fontsize=10)
    return fig


def write_quicklook(
    before_path: str | os.PathLike,
    after_path: str | os.PathLike,
    png_path: str | os.PathLike,
    max_size: int = 1024,
) -> Path:
    """Write :func:`quicklook_figure` as a PNG, atomically (``atomic.atomic_file``)."""
    fig = quicklook_figure(before_path, after_path, max_size)
    with atomic_file(png_path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(png_path)


class Quicklook:
    """A before/after quicklook not yet drawn: :meth:`write` draws it into a PNG.

    ``sources`` are the two GeoTIFFs it shows (the dataset refuses to write over them).
    """

    def __init__(
        self, before_path: str | os.PathLike, after_path: str | os.PathLike, max_size: int
    ) -> None:
        self.before_path, self.after_path = Path(before_path), Path(after_path)
        self.max_size = int(max_size)

    @property
    def sources(self) -> tuple[Path, ...]:
        return (self.before_path, self.after_path)

    def write(self, path: str | os.PathLike) -> Path:
        return write_quicklook(self.before_path, self.after_path, path, self.max_size)

    def __repr__(self) -> str:
        return f"Quicklook({self.before_path.name} -> {self.after_path.name})"


def quicklooks_of(
    befores: Mapping[str, str | os.PathLike],
    afters: Mapping[str, str | os.PathLike],
    max_size: int,
) -> dict[str, Quicklook]:
    """Lazy quicklooks {scene_id: Quicklook} of the scenes in ``afters`` (cloud-free products),
    each beside its cloudy input in ``befores``."""
    return {sid: Quicklook(befores[sid], after, max_size) for sid, after in afters.items()}
