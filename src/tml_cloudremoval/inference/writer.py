"""Writing a cleaned scene: model units -> DN rows -> a tiled, compressed GeoTIFF, atomically.

- :func:`output_nodata` and :func:`to_output` turn blended rows (model units) into output rows in
  the output type, with nodata where the input had none.
- :class:`SceneWriter` writes rows into a temporary sibling of the product
  (``tml_cloudremoval.atomic.atomic_file``) and renames it into place only when complete; a
  disk that is full (or a file-size limit) ends it with an ``OutputWriteError`` naming the file.
  A Cloud-Optimised GeoTIFF (the default, ``output_format="cog"``) is streamed into a second
  temporary sibling first, then copied by GDAL's COG driver into the first
  (:mod:`tml_cloudremoval.inference.cog`); the stream is removed either way.
- :class:`BackgroundRowWriter` converts and writes rows in a background thread, overlapping with
  the prediction of the next tile row (one chunk in flight: bounded memory).

Arrays are channels_last (H, W, C).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol, get_args

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from tml_cloudremoval.atomic import atomic_file, temporary_sibling
from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.inference.cog import DN_OFFSET, DN_SCALE, copy_to_cog
from tml_cloudremoval.inference.config import OutputDtype, OutputFormat
from tml_cloudremoval.normalise import OPTICAL_CLIP_DN, OPTICAL_SCALE
from tml_cloudremoval.output_errors import write_errors
from tml_cloudremoval.raster import geotiff_profile

BLOCK_SIZE = 256
"""Internal tile size of the output GeoTIFF (pixels)."""

OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
"""Output file layouts: a Cloud-Optimised GeoTIFF (cog) or a plain tiled GeoTIFF (gtiff)."""

OUTPUT_DTYPES: tuple[str, ...] = get_args(OutputDtype)
"""Output GeoTIFF types: uint16 DN (rounded, clipped to [0, 10000]) or float32 DN (clipped)."""


class Grid(Protocol):
    """What the writer needs to know of the scene grid (e.g. a ``RasterHeader``)."""

    height: int
    width: int
    crs: CRS | None
    transform: Affine


def output_nodata(
    input_nodata: float | None, dtype: str, input_dtype: str = "uint16"
) -> float | None:
    """The output's nodata value: the input's where the output type can hold it.

    A NaN or out-of-range value becomes 0 for uint16 and NaN for float32. None stays None for
    an integer input; a floating-point input (``input_dtype``) may hold NaN, which is nodata
    whether tagged or not, so it gets 0 (uint16) or NaN (float32) as if tagged NaN.
    """
    if input_nodata is None and np.issubdtype(np.dtype(input_dtype), np.floating):
        input_nodata = float("nan")
    if input_nodata is None:
        return None
    if dtype == "uint16":
        if np.isnan(input_nodata) or not 0 <= input_nodata <= 65535 or input_nodata % 1:
            return 0.0
        return float(input_nodata)
    return float(input_nodata)


def to_output(
    values: np.ndarray, valid: np.ndarray | None, dtype: str, nodata: float | None
) -> np.ndarray:
    """Model units (n, w, 10) -> output rows in ``dtype`` (DN clipped to [0, 10000]).

    Pixels that are not ``valid`` get ``nodata``; a valid pixel whose value happens to equal
    ``nodata`` is moved one step away from it, so nodata stays the mark of missing data only.
    """
    lo, hi = OPTICAL_CLIP_DN
    # In place on a float32 array we own: the same as optical_to_dn_uint16 / clip(denormalise),
    # without their temporaries (this runs on every output pixel).
    dn = np.multiply(values, np.float32(OPTICAL_SCALE), dtype=np.float32)
    if dtype == "uint16":
        np.rint(dn, out=dn)
    np.clip(dn, lo, hi, out=dn)
    out = dn.astype(np.uint16) if dtype == "uint16" else dn
    if nodata is None:
        return out
    if np.isnan(nodata):
        if valid is not None:
            out[~valid] = np.nan
        return out
    fill = out.dtype.type(nodata)
    clash = out == fill
    if clash.any():
        towards = np.inf if nodata < hi else -np.inf
        if dtype == "uint16":
            out[clash] = fill + 1 if nodata < hi else fill - 1
        else:
            out[clash] = np.nextafter(fill, out.dtype.type(towards))
    if valid is not None:
        out[~valid] = fill
    return out


def _profile(grid: Grid, count: int, dtype: np.dtype, nodata: float | None, compress: str) -> dict:
    """GeoTIFF creation profile of the output (``raster.geotiff_profile``): blocks of exactly
    ``BLOCK_SIZE`` px (the writer gathers rows to whole blocks), BigTIFF when needed, and the
    fastest compression level."""
    compress = None if not compress or compress.lower() == "none" else compress
    options: dict[str, Any] = {
        "blockxsize": BLOCK_SIZE,
        "blockysize": BLOCK_SIZE,
        "BIGTIFF": "IF_SAFER",
    }
    # Fastest levels: on 10 real SEN12MS-CR bands, deflate level 1 (libdeflate) writes
    # 2 x faster than the default level 6 for a file 1 % smaller; zstd 1 5 x faster.
    if compress and compress.lower() == "zstd":
        options["zstd_level"] = 1
    elif compress and compress.lower() == "deflate":
        options["zlevel"] = 1
    return geotiff_profile(
        grid.height,
        grid.width,
        count,
        dtype,
        crs=grid.crs,
        transform=grid.transform,
        nodata=nodata,
        compress=compress,
        creation_options=options,
    )


class SceneWriter:
    """Write an output scene row block by row block into a temporary file, rename at the end.

    Use as a context manager: on a clean exit the temporary sibling (``atomic.atomic_file``)
    replaces ``path`` (an existing file there is untouched until then); on an exception it is
    deleted. Rows must come in order, top to bottom; they are gathered in a buffer of one row of
    256 x 256 blocks so that every write covers whole blocks (each compressed block is written
    once). ``tags`` (and :meth:`update_tags` before the exit) become GeoTIFF metadata; every
    band carries scale 1e-4 and offset 0 (reflectance = DN x 1e-4) unless ``dn_scale`` is False
    (a mask, an uncertainty raster); ``units`` (e.g. "reflectance") is every band's unit.
    ``output_format``: "cog" (streamed into a temporary sibling, then copied by the COG driver)
    or "gtiff".
    """

    def __init__(
        self,
        path: str | os.PathLike,
        like: Grid,
        *,
        dtype: str = "uint16",
        nodata: float | None = None,
        descriptions: Sequence[str] = TML_BAND_NAMES,
        compress: str = "deflate",
        tags: dict[str, str] | None = None,
        output_format: str = "cog",
        dn_scale: bool = True,
        units: str | None = None,
    ) -> None:
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}: {output_format!r}")
        self.path = Path(path)
        self.output_format = output_format
        self._compress = compress
        self._dn_scale = dn_scale
        self._units = units
        self.height, self.width = like.height, like.width
        self.count = len(descriptions)
        self.dtype = np.dtype(dtype)
        self._profile = _profile(like, self.count, self.dtype, nodata, compress)
        self._descriptions = list(descriptions)
        self._tags = dict(tags or {})
        self._stack = ExitStack()
        self._ds: Any = None
        self._buf: np.ndarray | None = None  # (count, BLOCK_SIZE, width): one row of blocks
        self._buf_rows = 0  # rows held in _buf; they start at row _written
        self._next_row = 0  # first row not yet received
        self._written = 0  # rows written to the file

    def __enter__(self) -> SceneWriter:
        with ExitStack() as stack:
            tmp = stack.enter_context(atomic_file(self.path))
            if self.output_format == "cog":  # unwound: dataset closed, COG copy, stream removed
                stream = temporary_sibling(self.path, ".tif")
                stack.callback(stream.unlink, missing_ok=True)
                stack.push(self._cog_exit(stream, tmp))
                tmp = stream
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = stack.enter_context(rasterio.open(tmp, "w", **self._profile))
            for i, text in enumerate(self._descriptions, start=1):
                self._ds.set_band_description(i, text)
            if self._dn_scale:
                self._ds.scales = (DN_SCALE,) * self.count
                self._ds.offsets = (DN_OFFSET,) * self.count
            if self._units:
                self._ds.units = (self._units,) * self.count
            self._stack = stack.pop_all()  # closed (then renamed) in __exit__
        return self

    def _cog_exit(self, stream: Path, target: Path) -> Any:
        """Exit callback: after a clean close of the stream, copy it as a COG to ``target``."""

        def copy_on_success(exc_type: Any, exc: Any, tb: Any) -> bool:
            if exc_type is None:
                with write_errors(self.path):
                    copy_to_cog(stream, target, self._compress)
            return False

        return copy_on_success

    def update_tags(self, **tags: str) -> None:
        """Add GeoTIFF metadata tags (written when the file is closed)."""
        self._tags.update(tags)

    def write_rows(self, y0: int, rows: np.ndarray) -> None:
        """Hand over scene rows ``y0 .. y0 + len(rows)``: (n, width, count) array."""
        if y0 != self._next_row:
            raise ValueError(
                f"{self.path}: rows must come in order; got {y0}, expected {self._next_row}"
            )
        if rows.shape[1:] != (self.width, self.count):
            raise ValueError(
                f"{self.path}: rows of shape {rows.shape[1:]}, expected {(self.width, self.count)}"
            )
        n = rows.shape[0]
        i = 0
        while i < n:
            if self._buf_rows == 0 and n - i >= BLOCK_SIZE:  # whole rows of blocks: direct
                k = (n - i) // BLOCK_SIZE * BLOCK_SIZE
                self._write(np.moveaxis(rows[i : i + k], -1, 0))
                i += k
                continue
            if self._buf is None:
                self._buf = np.empty((self.count, BLOCK_SIZE, self.width), dtype=self.dtype)
            take = min(BLOCK_SIZE - self._buf_rows, n - i)
            self._buf[:, self._buf_rows : self._buf_rows + take] = np.moveaxis(
                rows[i : i + take], -1, 0
            )
            self._buf_rows += take
            i += take
            if self._buf_rows == BLOCK_SIZE:
                self._write(self._buf)
                self._buf_rows = 0
        self._next_row += n
        if self._next_row == self.height and self._buf_rows:
            self._write(self._buf[:, : self._buf_rows])
            self._buf_rows = 0

    def _write(self, bands_rows: np.ndarray) -> None:
        """Write (count, n, width) at the next unwritten row."""
        n = bands_rows.shape[1]
        window = Window(0, self._written, self.width, n)
        with write_errors(self.path):
            self._ds.write(bands_rows.astype(self.dtype, copy=False), window=window)
        self._written += n

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        """Close the file (dataset first, then the rename of ``atomic_file``); on any error the
        temporary file is removed and the error goes on (no room: an ``OutputWriteError``)."""
        with write_errors(self.path):
            return self._close(exc_type, exc, tb)

    def _close(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None:
            try:
                if self._next_row != self.height or self._written != self.height:
                    raise RuntimeError(
                        f"{self.path}: only {self._next_row} of {self.height} rows were handed over"
                    )
                if self._tags:
                    self._ds.update_tags(**self._tags)
            except BaseException as error:
                if not self._stack.__exit__(type(error), error, error.__traceback__):
                    raise
                return False
        return self._stack.__exit__(exc_type, exc, tb)


Convert = Callable[[np.ndarray, np.ndarray | None], np.ndarray]
"""(values (n, w, C), valid (n, w) | None) -> output rows (n, w, C) in the file's type."""


class BackgroundRowWriter:
    """Row sink for the engine: converts rows (:func:`to_output`, or ``convert``) and writes
    them to a :class:`SceneWriter` in a background thread, one chunk in flight (bounded memory).

    Use as a context manager inside the writer's: on exit the last write has finished (or its
    error is raised), so no write is in flight when the file is closed.
    """

    def __init__(
        self,
        writer: SceneWriter,
        dtype: str,
        nodata: float | None,
        convert: Convert | None = None,
    ) -> None:
        self.writer, self.dtype, self.nodata = writer, dtype, nodata
        self._convert = convert
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scene-writer")
        self._in_flight: Future | None = None

    def _write(self, y0: int, values: np.ndarray, valid: np.ndarray | None) -> None:
        if self._convert is not None:
            self.writer.write_rows(y0, self._convert(values, valid))
            return
        self.writer.write_rows(y0, to_output(values, valid, self.dtype, self.nodata))

    def wait(self) -> None:
        """Block until the write in flight has finished (its error is raised here)."""
        self._wait()

    def _wait(self) -> None:
        if self._in_flight is not None:
            future, self._in_flight = self._in_flight, None
            future.result()

    def __call__(self, y0: int, values: np.ndarray, valid: np.ndarray | None) -> None:
        self._wait()
        self._in_flight = self._pool.submit(self._write, y0, values, valid)

    def __enter__(self) -> BackgroundRowWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self._wait()
        finally:
            self._pool.shutdown(wait=True)
