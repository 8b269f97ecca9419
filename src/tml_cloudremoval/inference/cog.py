"""Cloud-Optimised GeoTIFF: the copy that makes one, and the layout check that proves it.

The tiled engine writes rows in a stream; GDAL's COG driver needs a finished source dataset. So
the writer streams into a tiled GeoTIFF (a temporary sibling), and :func:`copy_to_cog` copies it
with the COG driver (internal tiles, overviews by averaging, band descriptions, nodata, tags and
scale/offset carried over). :func:`cog_layout_faults` is the essence of GDAL's
``validate_cloud_optimized_geotiff.py`` (which ships with the GDAL Python bindings, absent here).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import rasterio
import rasterio.shutil
from rasterio.errors import NotGeoreferencedWarning

COG_BLOCK_SIZE = 512
"""Internal tile size of the COG (px); GDAL's default for the COG driver."""

DN_SCALE = 1e-4
"""Per-band scale tag of every output: reflectance = DN x 1e-4 + 0 (DN = reflectance x 10000)."""
DN_OFFSET = 0.0


def cog_options(compress: str | None) -> dict[str, Any]:
    """Creation options of the COG driver: ``compress`` (None: none) at the fastest level, the
    predictor that suits the data type (the driver picks 2 for integers, 3 for floats),
    overviews by averaging (nodata-aware), BigTIFF when needed."""
    options: dict[str, Any] = {
        "BLOCKSIZE": COG_BLOCK_SIZE,
        "OVERVIEW_RESAMPLING": "AVERAGE",
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "ALL_CPUS",
    }
    if compress and compress.lower() != "none":
        options["COMPRESS"] = compress.upper()
        options["PREDICTOR"] = "YES"
        if compress.lower() in ("deflate", "zstd"):
            options["LEVEL"] = 1
    else:
        options["COMPRESS"] = "NONE"
    return options


def copy_to_cog(src: str | os.PathLike, dst: str | os.PathLike, compress: str | None) -> None:
    """Copy the finished GeoTIFF ``src`` to a COG at ``dst`` (``dst`` is the caller's temporary
    sibling: the atomic rename is the caller's business)."""
    rasterio.shutil.copy(str(src), str(dst), driver="COG", **cog_options(compress))


def _item(ds: Any, name: str, bidx: int = 0, ovr: int | None = None) -> int | None:
    value = ds.get_tag_item(name, "TIFF", bidx=bidx, ovr=ovr)
    return None if value in (None, "") else int(value)


def cog_layout_faults(path: str | os.PathLike) -> list[str]:
    """Faults of ``path`` as a Cloud-Optimised GeoTIFF (empty: it is one).

    The checks of GDAL's validator: a GeoTIFF; tiled; overviews when larger than 512 px, each
    tiled; ``LAYOUT=COG`` in ``IMAGE_STRUCTURE``; the IFD of the main image first and the
    overview IFDs after it in order; the IFDs before the tile data; tile data of the smallest
    overview first and of the main image last; tile offsets increasing within each image.
    """
    path = Path(path)
    faults: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            if ds.driver != "GTiff":
                return [f"{path}: driver {ds.driver}, not GTiff"]
            if ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG":
                faults.append(f"{path}: IMAGE_STRUCTURE has no LAYOUT=COG")
            levels = [None, *range(len(ds.overviews(1)))]
            if max(ds.width, ds.height) > 512 and len(levels) == 1:
                faults.append(f"{path}: larger than 512 px but no overviews")
            faults += _level_faults(path, ds, levels)
    return faults


def _level_faults(path: Path, ds: Any, levels: list[int | None]) -> list[str]:
    """IFD order, tiling and tile-data order of the main image (None) and each overview."""
    faults: list[str] = []
    ifds = [_item(ds, "IFD_OFFSET", 1, ovr) for ovr in levels]
    if any(o is None for o in ifds):
        return [f"{path}: IFD offsets unreadable"]
    if ifds != sorted(ifds) or len(set(ifds)) != len(ifds):
        faults.append(f"{path}: IFDs not in order main, overview 1, 2, ... ({ifds})")
    first_data = []
    for ovr in levels:
        name = "main image" if ovr is None else f"overview {ovr + 1}"
        with rasterio.open(path, overview_level=ovr) if ovr is not None else _same(ds) as level:
            bx, by = level.block_shapes[0][1], level.block_shapes[0][0]
            if level.width > 512 and (bx == level.width or by == 1):
                faults.append(f"{path}: {name} is not tiled")
            n_x = -(-level.width // bx)
            n_y = -(-level.height // by)
        offsets = [
            _item(ds, f"BLOCK_OFFSET_{i}_{j}", 1, ovr)
            for j in range(min(n_y, 3))
            for i in range(min(n_x, 3))
        ]
        offsets = [o for o in offsets if o]  # 0 / None: a sparse (empty) tile
        if offsets != sorted(offsets):
            faults.append(f"{path}: {name}: tile offsets not increasing ({offsets})")
        first_data.append(min(offsets) if offsets else None)
    present = [o for o in first_data if o is not None]
    if present and min(present) < max(ifds):
        faults.append(f"{path}: tile data before the last IFD (IFDs not all at the start)")
    if present and present != sorted(present, reverse=True):
        faults.append(f"{path}: tile data not ordered smallest overview first, main image last")
    return faults


class _same:
    """``with _same(ds) as d`` yields ``ds`` itself (left open)."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds

    def __enter__(self) -> Any:
        return self.ds

    def __exit__(self, *exc: Any) -> None:
        return None
