"""Scene input/output for tiled inference: checks, windowed optical reads, SAR at 40 m, writer.

- :func:`check_scene` / :func:`check_scenes` look at headers only (no pixels) and raise a
  ``ValueError`` naming the file for every fault found: unreadable or truncated file, wrong band
  count, SAR that is not VV/VH or does not overlap the scene, an output path equal to an input.
- :class:`OpticalReader` reads one tile window of the TML bands (from a 10-band TML file or a
  13-band L1C stack; bands picked by name from the band descriptions when they name Sentinel-2
  bands, else by count) and its nodata mask, in model units.
- :func:`load_sar_40m` warps the SAR onto the 40 m grid aligned with the scene (one array of
  ceil(H/4) x ceil(W/4) x 2: 2745 x 2745 for a full Sentinel-2 tile, 60 MB).
- :class:`SceneWriter` writes rows of the 10-band output into a tiled, compressed GeoTIFF in a
  temporary file of the output folder and renames it into place only when complete.

Arrays are channels_last (H, W, C).
"""

from __future__ import annotations

import math
import os
import re
import uuid
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
from tml_cloudremoval.normalise import (
    OPTICAL_CLIP_DN,
    OPTICAL_SCALE,
    normalise_sar,
)
from tml_cloudremoval.raster import RasterError, RasterHeader, read_header
from tml_cloudremoval.sar import fill_nan_with_channel_mean, grid_40m, sar_to_40m, warp_sar_to_grid

BLOCK_SIZE = 256
"""Internal tile size of the output GeoTIFF (pixels)."""

_BAND_NAME = re.compile(r"^\s*B0*(\d{1,2}A?)\b", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Checks (headers only)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpticalInfo:
    """Header facts of an optical scene and where its TML bands are.

    ``band_indexes``: 0-based positions of B2 B3 B4 B5 B6 B7 B8 B8A B11 B12 in the file;
    ``band_source``: "descriptions" or "count" (how they were found).
    """

    header: RasterHeader
    band_indexes: tuple[int, ...]
    band_source: str

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
    """A checked scene: optical header, SAR header (None: optical only), output path."""

    optical: OpticalInfo
    sar: RasterHeader | None
    output: Path


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


def inspect_optical(path: str | os.PathLike) -> OpticalInfo:
    """Header and TML band positions of an optical scene (reads no pixels)."""
    header = read_header(path)
    indexes, source = optical_bands(header)
    return OpticalInfo(header, indexes, source)


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


def _same_path(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(output: str | os.PathLike, inputs: Sequence[str | os.PathLike]) -> Path:
    """Refuse an output path that is an input (or the same file under another name)."""
    out = Path(output)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise RasterError(out, "output path must end in .tif or .tiff")
    for source in inputs:
        if _same_path(out, Path(source)):
            raise RasterError(
                out, f"output path is an input file ({source}): refusing to overwrite it"
            )
    if out.exists() and not out.is_file():
        raise RasterError(out, "output path exists and is not a file")
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise RasterError(out, f"cannot write the output: {folder} is not a writable folder")
    return out


def _scene_faults(
    s2_path: str | os.PathLike,
    s1_path: str | os.PathLike | None,
    output_path: str | os.PathLike,
    other_inputs: Sequence[str | os.PathLike] = (),
) -> tuple[ScenePair | None, list[str]]:
    """(the checked scene or None, every fault found: output, optical and SAR checked apart)."""
    faults: list[str] = []
    out = optical = sar = None
    try:
        out = check_output(output_path, [p for p in (s2_path, s1_path, *other_inputs) if p])
    except ValueError as exc:
        faults.append(str(exc))
    try:
        optical = inspect_optical(s2_path)
    except ValueError as exc:
        faults.append(str(exc))
    if optical is not None and s1_path is not None:
        try:
            sar = inspect_sar(s1_path, optical)
        except ValueError as exc:
            faults.append(str(exc))
    elif s1_path is not None:  # still say whether the SAR file itself is readable
        try:
            read_header(s1_path)
        except ValueError as exc:
            faults.append(str(exc))
    if faults or out is None or optical is None:
        return None, faults
    return ScenePair(optical, sar, out), faults


def check_scene(
    s2_path: str | os.PathLike,
    s1_path: str | os.PathLike | None,
    output_path: str | os.PathLike,
) -> ScenePair:
    """Check one scene before any prediction (headers only).

    Raises one ``ValueError`` listing every fault, each naming its file.
    """
    pair, faults = _scene_faults(s2_path, s1_path, output_path)
    if faults:
        raise ValueError(faults[0] if len(faults) == 1 else "\n".join(faults))
    assert pair is not None
    return pair


def check_scenes(
    scenes: Sequence[tuple[str | os.PathLike, str | os.PathLike | None, str | os.PathLike]],
) -> list[ScenePair]:
    """Check every (s2, s1, output) triple; raise one ``ValueError`` listing every fault.

    Also refuses an output path that is an input of another scene or the output of two scenes.
    """
    problems: list[str] = []
    pairs: list[ScenePair] = []
    all_inputs = [p for s2, s1, _ in scenes for p in (s2, s1) if p is not None]
    seen_outputs: list[Path] = []
    for s2, s1, out in scenes:
        pair, faults = _scene_faults(s2, s1, out, all_inputs)
        if any(_same_path(Path(out), o) for o in seen_outputs):
            faults.append(f"{out}: output path is used by two scenes")
        seen_outputs.append(Path(out))
        problems.extend(faults)
        if pair is not None:
            pairs.append(pair)
    if problems:
        raise ValueError(
            f"{len(problems)} fault(s) in the input checks of {len(scenes)} scene(s); nothing "
            "was predicted:\n  " + "\n  ".join(problems)
        )
    return pairs


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def nodata_mask(data: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """(h, w) bool True where a pixel has no data: any band equal to ``nodata`` or NaN.

    None when the file declares no nodata value and holds no NaN (every pixel valid).
    """
    bad = None
    if np.issubdtype(data.dtype, np.floating):
        nan = np.isnan(data).any(axis=-1)
        bad = nan if nan.any() else None
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
        None when the scene declares no nodata). Parts beyond the scene edge are filled by edge
        replication; nodata pixels are fed to the model as 0.
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
        # normalise_optical, in place on one float32 array (this runs on every input pixel)
        optical = data.astype(np.float32)
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
            ds = rasterio.open(info.path)
        except (RasterioError, OSError) as exc:
            raise RasterError(info.path, f"not a readable GeoTIFF ({exc})") from exc
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
        raise ValueError(f"{optical.path}: no SAR file for this scene")
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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def temporary_sibling(path: Path) -> Path:
    """A fresh hidden name in the folder of ``path`` for an atomic write (not created here).

    The writer creates it with the usual permissions (``tempfile.mkstemp`` would make it 0600,
    and ``os.replace`` would carry that over to the final file).
    """
    return path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"


def output_nodata(input_nodata: float | None, dtype: str) -> float | None:
    """The output's nodata value: the input's where the output type can hold it.

    None stays None; a NaN or out-of-range value becomes 0 for uint16 and NaN for float32.
    """
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


class SceneWriter:
    """Write an output scene row block by row block into a temporary file, rename at the end.

    Use as a context manager: on a clean exit the temporary file replaces ``path`` (an existing
    file there is untouched until then); on an exception it is deleted. Rows must come in order,
    top to bottom; they are gathered in a buffer of one row of 256 x 256 blocks so that every
    write covers whole blocks (each compressed block is written once).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        like: OpticalInfo,
        *,
        dtype: str = "uint16",
        nodata: float | None = None,
        descriptions: Sequence[str] = TML_BAND_NAMES,
        compress: str = "deflate",
        tags: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.height, self.width = like.height, like.width
        self.count = len(descriptions)
        self.dtype = np.dtype(dtype)
        self._profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": like.width,
            "height": like.height,
            "count": self.count,
            "dtype": self.dtype.name,
            "crs": like.crs,
            "transform": like.transform,
            "nodata": nodata,
            "interleave": "pixel",
            "tiled": True,
            "blockxsize": BLOCK_SIZE,
            "blockysize": BLOCK_SIZE,
            "BIGTIFF": "IF_SAFER",
        }
        if compress and compress.lower() != "none":
            self._profile["compress"] = compress
            self._profile["predictor"] = 3 if np.issubdtype(self.dtype, np.floating) else 2
            # Fastest levels: on 10 real SEN12MS-CR bands, deflate level 1 (libdeflate) writes
            # 2 x faster than the default level 6 for a file 1 % smaller; zstd 1 5 x faster.
            if compress.lower() == "zstd":
                self._profile["zstd_level"] = 1
            elif compress.lower() == "deflate":
                self._profile["zlevel"] = 1
        self._descriptions = list(descriptions)
        self._tags = tags or {}
        self._tmp: Path | None = None
        self._ds: Any = None
        self._buf: np.ndarray | None = None  # (count, BLOCK_SIZE, width): one row of blocks
        self._buf_rows = 0  # rows held in _buf; they start at row _written
        self._next_row = 0  # first row not yet received
        self._written = 0  # rows written to the file

    def __enter__(self) -> SceneWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temporary_sibling(self.path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(self._tmp, "w", **self._profile)
            for i, text in enumerate(self._descriptions, start=1):
                self._ds.set_band_description(i, text)
            if self._tags:
                self._ds.update_tags(**self._tags)
        except BaseException:
            self._abort()
            raise
        return self

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
        self._ds.write(bands_rows.astype(self.dtype, copy=False), window=window)
        self._written += n

    def _abort(self) -> None:
        if self._ds is not None:
            try:
                self._ds.close()
            except Exception:  # the original error matters, not this one
                pass
            self._ds = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            if self._next_row != self.height or self._written != self.height:
                raise RuntimeError(
                    f"{self.path}: only {self._next_row} of {self.height} rows were handed over"
                )
            self._ds.close()
            self._ds = None
            os.replace(self._tmp, self.path)
        except BaseException:
            self._abort()
            raise


# --------------------------------------------------------------------------------------------
# Folders of scenes
# --------------------------------------------------------------------------------------------

TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")


def find_scene_pairs(
    folder: str | os.PathLike, optical_suffix: str, sar_suffix: str | None
) -> list[tuple[str, Path, Path | None]]:
    """Pair optical and SAR files in ``folder``: [(scene id, optical path, SAR path | None)].

    Rule: every ``<id><optical_suffix>.tif`` (or ``.tiff``) is an optical scene, and its SAR is
    ``<id><sar_suffix>.tif`` (or ``.tiff``) in the same folder; e.g. with the suffixes
    "s2_cloudy" and "s1": ``T32TMT_2024_s2_cloudy.tif`` + ``T32TMT_2024_s1.tif`` (id
    "T32TMT_2024_"), and ``s2_cloudy.tif`` + ``s1.tif`` (id ""). ``sar_suffix`` None: no SAR.
    Raises ``ValueError`` naming the folder or the optical file when the folder holds no scene
    or a scene has no SAR partner.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: scenes folder does not exist")
    pairs: list[tuple[str, Path, Path | None]] = []
    missing: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in TIFF_SUFFIXES or not path.stem.endswith(optical_suffix):
            continue
        scene_id = path.stem[: len(path.stem) - len(optical_suffix)]
        sar = None
        if sar_suffix is not None:
            candidates = [folder / f"{scene_id}{sar_suffix}{ext}" for ext in TIFF_SUFFIXES]
            sar = next((c for c in candidates if c.is_file()), None)
            if sar is None:
                missing.append(f"{path}: no SAR partner {candidates[0].name} in {folder}")
                continue
        pairs.append((scene_id, path, sar))
    if missing:
        raise ValueError("scene(s) without SAR:\n  " + "\n  ".join(missing))
    if not pairs:
        raise ValueError(
            f"{folder}: no optical scene named <id>{optical_suffix}.tif in this folder"
        )
    return pairs
