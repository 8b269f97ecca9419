"""GeoTIFF input/output on rasterio: headers, windowed channels_last reads, atomic writes.

Every failure to open or read a file becomes a :class:`RasterError` whose message starts with
the path and says what is wrong (missing, not a TIFF, truncated, unreadable). Files without a
CRS or geotransform (some SEN12MS-CR patches) read like any other; rasterio's
``NotGeoreferencedWarning`` is silenced for them. Arrays are channels_last ``(H, W, C)``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from tml_cloudremoval.atomic import atomic_file, same_file
from tml_cloudremoval.errors import ProjectError

__all__ = [
    "RasterError",
    "RasterHeader",
    "geotiff_profile",
    "read_header",
    "read_header_and_pixels",
    "read_raster",
    "write_geotiff_atomic",
]

WindowLike = Window | tuple[slice, slice]
"""A rasterio ``Window`` or a pair of slices ``(rows, cols)`` in pixels."""


class RasterError(ProjectError):
    """A raster file is missing, unreadable, truncated or not what the caller asked for.

    ``path`` is the offending file, ``fault`` the reason; ``str(error)`` is ``"<path>: <fault>"``.
    """

    def __init__(self, path: str | os.PathLike, fault: str) -> None:
        self.path = Path(path)
        self.fault = fault
        super().__init__(f"{self.path}: {fault}")

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        # picklable with its own arguments: errors raised in worker processes arrive whole
        return (type(self), (self.path, self.fault))


@dataclass(frozen=True)
class RasterHeader:
    """What a GeoTIFF says about itself, without reading pixels.

    ``crs`` is None and ``transform`` the identity for files without georeferencing;
    ``dtype`` is a numpy dtype name such as ``"uint16"``; ``descriptions`` has one entry per
    band (None where unset).
    """

    path: Path
    count: int
    dtype: str
    width: int
    height: int
    crs: CRS | None
    transform: Affine
    nodata: float | None
    descriptions: tuple[str | None, ...]

    @property
    def georeferenced(self) -> bool:
        """True when the file carries a CRS or a non-identity geotransform."""
        return self.crs is not None or self.transform != Affine.identity()

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(height, width, count)``: the shape :func:`read_raster` returns for the whole file."""
        return (self.height, self.width, self.count)


@contextmanager
def _open(path: Path) -> Iterator[Any]:
    """Open ``path`` read-only, turning every rasterio/GDAL failure into a RasterError."""
    if not path.exists():
        raise RasterError(path, "file does not exist")
    if not path.is_file():
        raise RasterError(path, "is not a file")
    if path.stat().st_size == 0:
        raise RasterError(path, "file is empty (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            dataset = rasterio.open(path)
        except (RasterioError, OSError) as exc:
            raise RasterError(path, f"not a readable GeoTIFF ({_reason(exc)})") from exc
        try:
            yield dataset
        finally:
            dataset.close()


def _reason(exc: BaseException) -> str:
    """A short reason from a rasterio/GDAL exception, without the path repeated."""
    text = str(exc).strip() or type(exc).__name__
    return text.replace("See previous exception for details.", "").strip() or type(exc).__name__


def _data_end(dataset: Any) -> int | None:
    """Largest byte offset at which TIFF pixel data ends, from the directory; None if unknown.

    The last block of every band is checked (blocks are written in order, so a truncated file
    loses its last blocks first). Reads no pixels.
    """
    block_h, block_w = dataset.block_shapes[0]
    last_x = math.ceil(dataset.width / block_w) - 1
    last_y = math.ceil(dataset.height / block_h) - 1
    end = None
    for bidx in range(1, dataset.count + 1):
        offset = dataset.get_tag_item(f"BLOCK_OFFSET_{last_x}_{last_y}", "TIFF", bidx=bidx)
        size = dataset.get_tag_item(f"BLOCK_SIZE_{last_x}_{last_y}", "TIFF", bidx=bidx)
        if not offset or not size:  # sparse block or a non-TIFF driver
            continue
        end = max(end or 0, int(offset) + int(size))
    return end


def _checked_header(ds: Any, path: Path) -> RasterHeader:
    """The header of an open dataset, after checking its pixel data is all in the file."""
    end = _data_end(ds)
    size = path.stat().st_size
    if end is not None and end > size:
        raise RasterError(
            path, f"truncated: pixel data should end at byte {end}, the file has {size} bytes"
        )
    return RasterHeader(
        path=path,
        count=int(ds.count),
        dtype=str(np.dtype(ds.dtypes[0])),
        width=int(ds.width),
        height=int(ds.height),
        crs=ds.crs if ds.crs else None,
        transform=ds.transform,
        nodata=ds.nodata,
        descriptions=tuple(ds.descriptions),
    )


def read_header(path: str | os.PathLike) -> RasterHeader:
    """Read the header of a GeoTIFF (no pixels) and check its pixel data is all in the file.

    Raises :class:`RasterError` naming the file when it is missing, empty, not a TIFF, or
    truncated (its directory points past the end of the file).
    """
    path = Path(path)
    with _open(path) as ds:
        return _checked_header(ds, path)


def read_header_and_pixels(
    path: str | os.PathLike, pixels: bool = True, nodata_to_nan: bool = False
) -> tuple[RasterHeader, np.ndarray | RasterError | None]:
    """:func:`read_header` and, in the same open (one open per file: validation at scale),
    the whole image -> ``(header, image)``.

    ``image`` is ``(H, W, C)`` in the file dtype, a channels_last VIEW of band-major memory
    (``np.moveaxis(image, -1, 0)`` is contiguous: band-by-band checks copy nothing); where the
    header is good but the pixels cannot be decoded it is the :class:`RasterError` saying so;
    None when ``pixels`` is False. Header faults raise as in :func:`read_header`.
    ``nodata_to_nan`` as in :func:`read_raster`.
    """
    path = Path(path)
    with _open(path) as ds:
        header = _checked_header(ds, path)
        if not pixels:
            return header, None
        try:
            data = ds.read()
        except (RasterioError, OSError) as exc:
            fault = f"pixel data unreadable, truncated or corrupt ({_reason(exc)})"
            return header, RasterError(path, fault)
    nodata = header.nodata
    if nodata_to_nan and nodata is not None and np.issubdtype(data.dtype, np.floating):
        if not np.isnan(nodata):
            data[data == nodata] = np.nan
    return header, np.moveaxis(data, 0, -1)


def _as_window(window: WindowLike | None, path: Path, height: int, width: int) -> Window | None:
    if window is None:
        return None
    if isinstance(window, Window):
        win = window
    else:
        rows, cols = window
        if rows.step not in (None, 1) or cols.step not in (None, 1):
            raise RasterError(path, f"window slices must have step 1, got {window}")
        r0 = 0 if rows.start is None else rows.start
        r1 = height if rows.stop is None else rows.stop
        c0 = 0 if cols.start is None else cols.start
        c1 = width if cols.stop is None else cols.stop
        win = Window(c0, r0, c1 - c0, r1 - r0)
    if (
        win.col_off < 0
        or win.row_off < 0
        or win.width <= 0
        or win.height <= 0
        or win.col_off + win.width > width
        or win.row_off + win.height > height
    ):
        raise RasterError(
            path,
            f"window rows {win.row_off}:{win.row_off + win.height}, cols "
            f"{win.col_off}:{win.col_off + win.width} is not inside the {height}x{width} image",
        )
    return win


def read_raster(
    path: str | os.PathLike,
    window: WindowLike | None = None,
    bands: Sequence[int] | None = None,
    nodata_to_nan: bool = False,
) -> np.ndarray:
    """Read a GeoTIFF (or a window of it) as a channels_last array ``(H, W, C)`` in the file dtype.

    ``window``: a rasterio ``Window`` or ``(row_slice, col_slice)``; it must lie inside the image.
    ``bands``: 0-based band positions to read (e.g. ``bands.tml_band_indices()``), default all.
    ``nodata_to_nan``: for float files with a declared nodata value, turn those pixels into NaN.
    Raises :class:`RasterError` naming the file for missing, corrupt or truncated files and for
    bad windows or band positions.
    """
    path = Path(path)
    with _open(path) as ds:
        win = _as_window(window, path, ds.height, ds.width)
        indexes = None
        if bands is not None:
            bad = [b for b in bands if not 0 <= int(b) < ds.count]
            if bad:
                raise RasterError(
                    path, f"band positions {bad} out of range: the file has {ds.count}"
                )
            indexes = [int(b) + 1 for b in bands]
        try:
            data = ds.read(indexes=indexes, window=win)
        except (RasterioError, OSError) as exc:
            raise RasterError(
                path, f"pixel data unreadable, truncated or corrupt ({_reason(exc)})"
            ) from exc
        nodata = ds.nodata
    image = np.ascontiguousarray(np.moveaxis(data, 0, -1))
    if nodata_to_nan and nodata is not None and np.issubdtype(image.dtype, np.floating):
        if not np.isnan(nodata):
            image[image == nodata] = np.nan
    return image


def geotiff_profile(
    height: int,
    width: int,
    count: int,
    dtype: np.dtype,
    *,
    crs: CRS | str | None,
    transform: Affine | None,
    nodata: float | None,
    tiled: bool = True,
    compress: str | None = "deflate",
    creation_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The rasterio profile of a pixel-interleaved GeoTIFF: blocks of at most 256 px, the
    predictor that suits ``dtype`` (3 for floats, 2 for integers) when compressed."""
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": np.dtype(dtype).name,
        "crs": crs,
        "transform": transform if transform is not None else Affine.identity(),
        "nodata": nodata,
        "interleave": "pixel",
    }
    if tiled:
        block = 16 * math.ceil(min(256, max(height, width)) / 16)
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    if compress:
        profile["compress"] = compress
        profile["predictor"] = 3 if np.issubdtype(dtype, np.floating) else 2
    profile.update(creation_options or {})
    return profile


def write_geotiff_atomic(
    path: str | os.PathLike,
    array: np.ndarray,
    *,
    crs: CRS | str | None = None,
    transform: Affine | None = None,
    nodata: float | None = None,
    dtype: str | np.dtype | None = None,
    descriptions: Sequence[str | None] | None = None,
    tiled: bool = True,
    compress: str | None = "deflate",
    creation_options: Mapping[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
) -> Path:
    """Write a channels_last array ``(H, W, C)`` (or ``(H, W)``) as a GeoTIFF, atomically.

    The file is written through :func:`tml_cloudremoval.atomic.atomic_file`, so a reader never
    sees a half-written file and an existing file survives a failed write. ``crs`` and
    ``transform`` None write a file without georeferencing (nothing is invented).
    ``dtype`` defaults to the array's; ``descriptions`` are band names (one per channel).
    ``creation_options``: further GDAL GeoTIFF creation options (e.g. ``{"zstd_level": 1}``).
    ``inputs``: files the caller read from; writing over any of them is refused.
    Returns the path written.
    """
    path = Path(path)
    for source in inputs:
        if same_file(path, source):
            raise RasterError(path, f"refusing to overwrite an input file ({source})")
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., np.newaxis]
    if array.ndim != 3:
        raise RasterError(path, f"expected an (H, W, C) array to write, got shape {array.shape}")
    height, width, count = array.shape
    out_dtype = np.dtype(dtype or array.dtype)
    if descriptions is not None and len(descriptions) != count:
        raise RasterError(
            path, f"{len(descriptions)} band descriptions given for {count} bands to write"
        )
    profile = geotiff_profile(
        height,
        width,
        count,
        out_dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        tiled=tiled,
        compress=compress,
        creation_options=creation_options,
    )
    with atomic_file(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(np.moveaxis(array.astype(out_dtype, copy=False), -1, 0))
            if descriptions is not None:
                for i, text in enumerate(descriptions, start=1):
                    if text is not None:
                        dst.set_band_description(i, text)
    return path
