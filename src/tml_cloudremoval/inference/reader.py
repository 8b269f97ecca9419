"""Reading a scene for inference: header checks, windowed optical reads, SAR on the 40 m grid.

- :func:`inspect_optical` / :func:`inspect_sar` look at headers only (no pixels) and raise a
  ``RasterError`` naming the file: unreadable or truncated file, wrong band count, SAR that is not
  VV/VH or does not overlap the scene. :func:`inspect_scene` does both.
- :class:`OpticalReader` (from :func:`open_optical`) reads one tile window of the TML bands (from
  a 10-band TML file or a 13-band L1C stack; bands picked by name from the band descriptions when
  they name Sentinel-2 bands, else by count) and its nodata mask, in model units.
- :func:`load_sar_40m` warps the SAR onto the 40 m grid aligned with the scene (one array of
  ceil(H/4) x ceil(W/4) x 2: 2745 x 2745 for a full Sentinel-2 tile, 60 MB).

Arrays are channels_last (H, W, C).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from tml_cloudremoval.bands import (
    S1_BAND_NAMES,
    S2_BAND_NAMES,
    SAR_FACTOR,
    TML_BAND_NAMES,
    tml_band_indices,
)
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.products.safe import ProductBands, is_safe, read_safe
from tml_cloudremoval.inference.products.tml_layout import (
    is_tml_layout,
    read_tml_layout,
    tiff_metadata,
)
from tml_cloudremoval.inference.radiometry import (
    TRAINING_QUANTIFICATION,
    Radiometry,
    resolve_radiometry,
)
from tml_cloudremoval.normalise import OPTICAL_CLIP_DN, OPTICAL_SCALE, normalise_sar
from tml_cloudremoval.raster import RasterError, RasterHeader, read_header
from tml_cloudremoval.sar import fill_nan_with_channel_mean, grid_40m, sar_to_40m, warp_sar_to_grid

IDENTITY = Radiometry((0.0,) * len(TML_BAND_NAMES), TRAINING_QUANTIFICATION, "no offset")
"""DN = reflectance x 10000 already (the training data)."""

_BAND_NAME = re.compile(r"^\s*B0*(\d{1,2}A?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class OpticalInfo:
    """Header facts of an optical scene and where its TML bands are.

    ``band_indexes``: 0-based positions of B2 B3 B4 B5 B6 B7 B8 B8A B11 B12 in the file;
    ``band_source``: "descriptions" or "count" (how they were found in a stack), or the product
    kind ("safe L1C", "tml_layout"); ``radiometry``: the DN offset and quantification applied.
    """

    header: RasterHeader
    band_indexes: tuple[int, ...]
    band_source: str
    radiometry: Radiometry = IDENTITY
    source: str | None = None
    """What GDAL opens: the VRT text of a product's bands (radiometry applied in it, float32,
    NaN nodata); None: ``header.path`` itself (the reader applies the radiometry)."""

    @property
    def read_radiometry(self) -> Radiometry:
        """What the reader still applies to the pixels it reads."""
        return self.radiometry if self.source is None else IDENTITY

    @property
    def path(self) -> Path:
        return self.header.path

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def width(self) -> int:
        return self.header.width

    @property
    def nodata(self) -> float | None:
        return self.header.nodata

    @property
    def crs(self) -> CRS | None:
        return self.header.crs

    @property
    def transform(self) -> Affine:
        return self.header.transform


@dataclass(frozen=True)
class ScenePair:
    """A checked scene: optical header and SAR header (None: optical only)."""

    optical: OpticalInfo
    sar: RasterHeader | None

    @property
    def sources(self) -> tuple[Path, ...]:
        """The input files of the scene."""
        return (self.optical.path,) + (() if self.sar is None else (self.sar.path,))


def band_names_from_descriptions(descriptions: Sequence[str | None]) -> list[str] | None:
    """Sentinel-2 band names ("B2", "B8A", ...) parsed from band descriptions, or None.

    Accepts "B2", "B02", "b8a", "B4 (red)"; returns None unless every description names a band.
    """
    names = []
    for text in descriptions:
        match = _BAND_NAME.match(text or "")
        if not match:
            return None
        names.append("B" + match.group(1).upper())
    return names


def optical_bands(header: RasterHeader) -> tuple[tuple[int, ...], str]:
    """(0-based positions of the TML bands in the file, "descriptions" | "count").

    Raises ``RasterError`` naming the file when the TML bands cannot be found.
    """
    names = band_names_from_descriptions(header.descriptions)
    if names is not None:
        try:
            return tuple(tml_band_indices(names)), "descriptions"
        except ValueError as exc:
            raise RasterError(
                header.path, f"band descriptions {names} lack TML bands ({exc})"
            ) from None
    if header.count == len(TML_BAND_NAMES):
        return tuple(range(header.count)), "count"
    if header.count == len(S2_BAND_NAMES):
        return tuple(tml_band_indices(S2_BAND_NAMES)), "count"
    raise RasterError(
        header.path,
        f"optical scene has {header.count} bands, expected {len(TML_BAND_NAMES)} "
        f"({' '.join(TML_BAND_NAMES)}) or {len(S2_BAND_NAMES)} ({' '.join(S2_BAND_NAMES)}), "
        "or band descriptions naming them",
    )


def _stack_metadata(header: RasterHeader, indexes: Sequence[int]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(header.path) as ds:
            return tiff_metadata(ds, [i + 1 for i in indexes], str(header.path))


def _product_info(path: Path, product: ProductBands, dn_offset: str | int) -> OpticalInfo:
    radiometry = resolve_radiometry(product.metadata, dn_offset, path)
    stack = product.stack(radiometry.offsets, radiometry.quantification)
    header = RasterHeader(
        path=path,
        count=len(TML_BAND_NAMES),
        dtype="uint16",
        width=stack.width,
        height=stack.height,
        crs=stack.crs,
        transform=stack.transform,
        nodata=0.0,
        descriptions=TML_BAND_NAMES,
    )
    indexes = tuple(range(len(TML_BAND_NAMES)))
    return OpticalInfo(header, indexes, product.kind, radiometry, stack.vrt)


def inspect_optical(
    path: str | os.PathLike, dn_offset: str | int = "auto", allow_l2a: bool = False
) -> OpticalInfo:
    """Header, TML band positions and radiometry of an optical input (reads no pixels).

    ``path``: a GeoTIFF stack (10 TML bands or 13 L1C bands), a Sentinel-2 ``.SAFE`` folder or
    ``.zip`` (``products.safe``) or a TML-layout folder (``products.tml_layout``).
    ``dn_offset``/``allow_l2a``: ``inference.dn_offset``/``inference.allow_l2a``.
    """
    path = Path(path)
    if is_safe(path):
        return _product_info(path, read_safe(path, allow_l2a), dn_offset)
    if is_tml_layout(path):
        return _product_info(path, read_tml_layout(path), dn_offset)
    if path.is_dir():
        raise SceneError(
            f"{path}: a folder that is neither a Sentinel-2 .SAFE product (no MTD_MSIL1C.xml) "
            "nor a TML layout (no B02.tif ... or s2_10m.tif)"
        )
    header = read_header(path)
    indexes, source = optical_bands(header)
    radiometry = resolve_radiometry(_stack_metadata(header, indexes), dn_offset, path)
    return OpticalInfo(header, indexes, source, radiometry)


def _bounds(height: int, width: int, transform: Affine) -> tuple[float, float, float, float]:
    return rasterio.transform.array_bounds(height, width, transform)


def inspect_sar(path: str | os.PathLike, optical: OpticalInfo) -> RasterHeader:
    """Header of a SAR file, checked against the optical scene (reads no pixels).

    Checks: readable, 2 bands (VV, VH), georeferenced like the scene (both with a CRS, or both
    without one, then on the scene's grid at 10 m or 40 m), and footprint overlapping the scene.
    """
    header = read_header(path)
    if header.count != len(S1_BAND_NAMES):
        raise RasterError(
            header.path,
            f"SAR file has {header.count} bands, expected {len(S1_BAND_NAMES)} "
            f"({', '.join(S1_BAND_NAMES)} in dB)",
        )
    if (header.crs is None) != (optical.crs is None):
        which = header.path if header.crs is None else optical.path
        raise RasterError(
            which, "has no CRS while its partner has one: cannot place SAR on the scene"
        )
    if header.crs is None:
        sizes = {(optical.height, optical.width), _grid40_shape(optical)}
        if (header.height, header.width) not in sizes:
            raise RasterError(
                header.path,
                f"SAR without CRS must be on the scene grid ({optical.height} x {optical.width} "
                f"at 10 m or {_grid40_shape(optical)} at 40 m); it is {header.height} x "
                f"{header.width}",
            )
        return header
    scene = _bounds(optical.height, optical.width, optical.transform)
    try:
        left, bottom, right, top = transform_bounds(optical.crs, header.crs, *scene, densify_pts=21)
    except (RasterioError, ValueError) as exc:
        raise RasterError(header.path, f"cannot relate its CRS to the scene's ({exc})") from exc
    sl, sb, sr, st = _bounds(header.height, header.width, header.transform)
    if left >= sr or right <= sl or bottom >= st or top <= sb:
        raise RasterError(
            header.path,
            f"SAR footprint {tuple(round(v, 1) for v in (sl, sb, sr, st))} ({header.crs}) does "
            f"not overlap the optical scene {optical.path.name}",
        )
    return header


def _grid40_shape(optical: OpticalInfo) -> tuple[int, int]:
    return math.ceil(optical.height / SAR_FACTOR), math.ceil(optical.width / SAR_FACTOR)


def inspect_scene(
    s2_path: str | os.PathLike,
    s1_path: str | os.PathLike | None,
    dn_offset: str | int = "auto",
    allow_l2a: bool = False,
) -> tuple[ScenePair | None, list[str]]:
    """Check one scene (headers only): (the scene or None, every fault found, each naming its
    file). Optical and SAR are checked apart, so both faults are reported at once."""
    faults: list[str] = []
    optical = sar = None
    try:
        optical = inspect_optical(s2_path, dn_offset, allow_l2a)
    except ValueError as exc:
        faults.append(str(exc))
    try:
        if optical is not None and s1_path is not None:
            sar = inspect_sar(s1_path, optical)
        elif s1_path is not None:  # still say whether the SAR file itself is readable
            read_header(s1_path)
    except ValueError as exc:
        faults.append(str(exc))
    if faults or optical is None:
        return None, faults
    return ScenePair(optical, sar), faults


def nodata_mask(data: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """(h, w) bool True where a pixel has no data: any band equal to ``nodata``, NaN or +-inf
    (NaN is nodata whether the file says so or not; inf is no reflectance either).

    None when the file declares no nodata value and holds no NaN or inf (every pixel valid).
    """
    bad = None
    if np.issubdtype(data.dtype, np.floating):
        missing = ~np.isfinite(data).all(axis=-1)
        bad = missing if missing.any() else None
    if nodata is not None and not np.isnan(nodata):
        hit = (data == np.asarray(nodata).astype(data.dtype)).any(axis=-1)
        bad = hit if bad is None else bad | hit
    elif nodata is not None and bad is None:
        bad = np.zeros(data.shape[:2], dtype=bool)
    return bad


class OpticalReader:
    """Windowed reads of the TML bands of an open optical scene (use :func:`open_optical`)."""

    def __init__(self, dataset: Any, info: OpticalInfo) -> None:
        self._ds = dataset
        self.info = info
        self._indexes = [i + 1 for i in info.band_indexes]

    def read_tile(
        self, y0: int, x0: int, height: int, width: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Read rows y0..y0+height, cols x0..x0+width of the TML bands.

        Returns (optical (height, width, 10) float32 model units, valid (height, width) bool or
        None when the scene declares no nodata). The scene's radiometry (DN offset,
        quantification) is applied first, so the model sees DN = reflectance x 10000. Parts
        beyond the scene edge are filled by edge replication; nodata pixels (nodata value, NaN,
        inf) are fed to the model as 0.
        """
        info = self.info
        h_in = max(0, min(height, info.height - y0))
        w_in = max(0, min(width, info.width - x0))
        try:
            data = self._ds.read(indexes=self._indexes, window=Window(x0, y0, w_in, h_in))
        except (RasterioError, OSError) as exc:
            raise RasterError(info.path, f"pixel data unreadable or corrupt ({exc})") from exc
        data = np.moveaxis(data, 0, -1)
        bad = nodata_mask(data, info.nodata)
        # radiometry, then normalise_optical in place on one float32 array (every input pixel)
        optical = info.read_radiometry.to_model_dn(data)
        del data
        np.clip(optical, *OPTICAL_CLIP_DN, out=optical)
        optical /= np.float32(OPTICAL_SCALE)
        if bad is not None:
            optical[bad] = 0.0
        pad = ((0, height - h_in), (0, width - w_in))
        if pad != ((0, 0), (0, 0)):
            optical = np.pad(optical, (*pad, (0, 0)), mode="edge")
            bad = None if bad is None else np.pad(bad, pad, mode="edge")
        return optical, None if bad is None else ~bad


@contextmanager
def open_optical(info: OpticalInfo) -> Iterator[OpticalReader]:
    """Open a checked optical scene for windowed reads."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            ds = rasterio.open(info.path if info.source is None else info.source)
        except (RasterioError, OSError) as exc:
            raise RasterError(info.path, f"not a readable optical input ({exc})") from exc
    try:
        yield OpticalReader(ds, info)
    finally:
        ds.close()


def load_sar_40m(pair: ScenePair, method: str = "mean") -> tuple[np.ndarray, float]:
    """SAR of a checked scene on the 40 m grid aligned with it, in model units.

    Returns (sar (ceil(H/4), ceil(W/4), 2) float32 normalised, coverage): ``coverage`` is the
    fraction of 40 m pixels the SAR covers; gaps are filled with the per-channel mean of the
    covered part (as the training data were). Raises ``RasterError`` naming the SAR file when it
    covers no pixel of the scene.
    """
    optical, header = pair.optical, pair.sar
    if header is None:
        raise SceneError(f"{optical.path}: no SAR file for this scene")
    transform, h40, w40 = grid_40m(optical.transform, optical.height, optical.width)
    if header.crs is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(header.path) as src:
                data = np.moveaxis(src.read(out_dtype=np.float32), 0, -1)
        if header.nodata is not None and not np.isnan(header.nodata):
            data[data == np.float32(header.nodata)] = np.nan
        if data.shape[:2] != (h40, w40):
            pad = ((0, h40 * SAR_FACTOR - data.shape[0]), (0, w40 * SAR_FACTOR - data.shape[1]))
            data = sar_to_40m(np.pad(data, (*pad, (0, 0)), constant_values=np.nan), method)
    else:
        try:
            data = warp_sar_to_grid(header.path, optical.crs, transform, h40, w40, method=method)
        except RasterioError as exc:
            raise RasterError(header.path, f"SAR unreadable or cannot be warped ({exc})") from exc
    covered = np.isfinite(data).all(axis=-1)
    coverage = float(covered.mean())
    if coverage == 0.0:
        raise RasterError(
            header.path, f"SAR holds no valid pixel over the scene {optical.path.name}"
        )
    data = fill_nan_with_channel_mean(np.where(covered[..., None], data, np.nan))
    return normalise_sar(data), coverage
