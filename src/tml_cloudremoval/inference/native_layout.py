"""Where a cleaned scene's rows go: one 10-band stack, or the TML (native) layout.

``inference.output_layout``:

- ``stack_10m``: one file, the 10 bands B2 B3 B4 B5 B6 B7 B8 B8A B11 B12 on the 10 m grid
  (``<scene_id>_cloudfree.tif`` in the catalog's folder);
- ``native``: the TML layout, two files per scene: ``<scene_id>_cloudfree.tif`` holds the 10 m
  bands B2 B3 B4 B8 on the 10 m grid, and its sibling ``<scene_id>_cloudfree_20m.tif``
  (:func:`native_20m_path`) the 20 m bands B5 B6 B7 B8A B11 B12 on the 20 m grid: the same
  origin and CRS, pixel size x 2, ceil(H / 2) x ceil(W / 2) px, each pixel the mean of the valid
  10 m pixels of its 2 x 2 block (nodata where none is valid). SAR is never written.

:func:`scene_output` opens the writer(s) of every part of the rows (the prediction, and the
uncertainty rasters of ``inference.predictors``: each follows the same layout, its 20 m file
holding the square root of the 2 x 2 mean of the variance) and gives the engine one row sink;
each file is written atomically (``SceneWriter``); the run facts go into every file.
Arrays are channels_last (H, W, C).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from affine import Affine

from tml_cloudremoval.bands import TML_BAND_NAMES, TML_BANDS
from tml_cloudremoval.inference.writer import BackgroundRowWriter, Convert, Grid, SceneWriter
from tml_cloudremoval.normalise import OPTICAL_CLIP_DN, OPTICAL_SCALE

BANDS_10M: tuple[int, ...] = tuple(i for i, b in enumerate(TML_BANDS) if b.resolution_m == 10)
"""Positions of B2 B3 B4 B8 in the model's 10 bands."""
BANDS_20M: tuple[int, ...] = tuple(i for i, b in enumerate(TML_BANDS) if b.resolution_m == 20)
"""Positions of B5 B6 B7 B8A B11 B12 in the model's 10 bands."""


def native_20m_path(path: str | Path) -> Path:
    """The 20 m file beside the 10 m one: ``x_cloudfree.tif`` -> ``x_cloudfree_20m.tif``."""
    path = Path(path)
    return path.with_name(f"{path.stem}_20m{path.suffix}")


def grid_20m(grid: Grid) -> SimpleNamespace:
    """The 20 m grid of a 10 m grid: same origin and CRS, pixel size x 2, ceil(size / 2)."""
    return SimpleNamespace(
        height=-(-grid.height // 2),
        width=-(-grid.width // 2),
        crs=grid.crs,
        transform=grid.transform @ Affine.scale(2),
    )


def mean_2x2(values: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """2 x 2 block means of the valid pixels: (n, w, C) -> (ceil(n/2), ceil(w/2), C), and the
    blocks holding any valid pixel (None when ``valid`` is None). Edge blocks of an odd size
    average the pixels they have."""
    n, w, c = values.shape
    pad = ((0, n % 2), (0, w % 2))
    weight = np.ones((n, w), np.float32) if valid is None else valid.astype(np.float32)
    weight = np.pad(weight, pad)  # padding carries no weight
    data = np.pad(values, (*pad, (0, 0))) * weight[..., None]
    sums = data.reshape(-(-n // 2), 2, -(-w // 2), 2, c).sum(axis=(1, 3))
    counts = weight.reshape(-(-n // 2), 2, -(-w // 2), 2).sum(axis=(1, 3))
    means = sums / np.maximum(counts, 1.0)[..., None]
    return means.astype(np.float32), None if valid is None else counts > 0


class _NativeSink:
    """Row sink splitting the 10 bands into the 10 m file and 2 x 2 means into the 20 m file;
    an odd row is held until its pair arrives (or the scene ends)."""

    def __init__(self, rows_10m: Any, rows_20m: Any, height: int, clip: bool = True) -> None:
        """``clip``: the prediction (model units), averaged as the output DN are, clipped;
        False: variances (an uncertainty part), averaged as they are."""
        self.rows_10m, self.rows_20m, self.height = rows_10m, rows_20m, height
        self.clip = clip
        self._held: tuple[np.ndarray, np.ndarray | None] | None = None

    def __call__(self, y0: int, values: np.ndarray, valid: np.ndarray | None) -> None:
        self.rows_10m(y0, np.ascontiguousarray(values[..., BANDS_10M]), valid)
        values = values[..., BANDS_20M]
        if self.clip:  # the mean of the output DN (clipped as every output pixel), model units
            lo, hi = (v / OPTICAL_SCALE for v in OPTICAL_CLIP_DN)
            values = np.clip(values, lo, hi)
        if self._held is not None:
            held, held_valid = self._held
            if (held_valid is None) != (valid is None):  # one block without a nodata mask
                held_valid = np.ones(held.shape[:2], bool) if held_valid is None else held_valid
                valid = np.ones(values.shape[:2], bool) if valid is None else valid
            values = np.concatenate([held, values])
            valid = None if valid is None else np.concatenate([held_valid, valid])
            y0 -= 1
            self._held = None
        n = values.shape[0]
        if n % 2 and y0 + n < self.height:
            self._held = (values[-1:], None if valid is None else valid[-1:])
            values, valid = values[:-1], None if valid is None else valid[:-1]
        if values.shape[0]:
            self.rows_20m(y0 // 2, *mean_2x2(values, valid))


@dataclass(frozen=True)
class PartOutput:
    """How one part of the engine's rows (``inference.predictors``) becomes file(s): ``path``
    (the 10 m or only file), its type, nodata, converter (values, valid) -> rows, and whether the
    bands carry the DN scale tags (prediction) or ``units`` (uncertainty); ``clip_20m``: clip
    before the 2 x 2 mean (the prediction); ``tags``: GeoTIFF metadata of the file(s)."""

    path: Path
    dtype: str
    nodata: float | None
    convert: Convert | None = None
    dn_scale: bool = True
    units: str | None = None
    clip_20m: bool = True
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SceneOutput:
    """The open output file(s) of one scene: ``sink`` takes the engine's rows (model units)."""

    writers: list[SceneWriter]
    row_writers: list[BackgroundRowWriter]
    sink: Any

    def wait(self) -> None:
        """Block until every row handed over is written (before timing the run)."""
        for rows in self.row_writers:
            rows.wait()

    @property
    def paths(self) -> list[Path]:
        return [w.path for w in self.writers]

    def update_tags(self, **tags: str) -> None:
        """Metadata tags (the run facts) of every file."""
        for writer in self.writers:
            writer.update_tags(**tags)


class _PartsSink:
    """Row sink handing each part's 10 channels of the stacked rows to that part's sink."""

    def __init__(self, sinks: list[Any]) -> None:
        self.sinks = sinks

    def __call__(self, y0: int, values: np.ndarray, valid: np.ndarray | None) -> None:
        if len(self.sinks) == 1:  # the plain model: the rows as they are
            self.sinks[0](y0, values, valid)
            return
        bands = len(TML_BAND_NAMES)
        for i, sink in enumerate(self.sinks):
            sink(y0, values[..., i * bands : (i + 1) * bands], valid)


def _open_part(stack: ExitStack, part: PartOutput, grid: Grid, config: Any) -> SceneOutput:
    """The writer(s) and row sink of one part, in ``config.output_layout``."""
    options = {
        "dtype": part.dtype,
        "nodata": part.nodata,
        "compress": config.compress,
        "output_format": config.output_format,
        "dn_scale": part.dn_scale,
        "units": part.units,
        "tags": part.tags,
    }

    def rows(writer: SceneWriter) -> BackgroundRowWriter:
        sink = BackgroundRowWriter(writer, part.dtype, part.nodata, part.convert)
        return stack.enter_context(sink)

    if config.output_layout == "stack_10m":
        writer = stack.enter_context(SceneWriter(part.path, grid, **options))
        sink = rows(writer)
        return SceneOutput([writer], [sink], sink)
    names = [TML_BAND_NAMES[i] for i in BANDS_10M], [TML_BAND_NAMES[i] for i in BANDS_20M]
    w10 = stack.enter_context(SceneWriter(part.path, grid, descriptions=names[0], **options))
    w20 = stack.enter_context(
        SceneWriter(native_20m_path(part.path), grid_20m(grid), descriptions=names[1], **options)
    )
    r10, r20 = rows(w10), rows(w20)
    return SceneOutput([w10, w20], [r10, r20], _NativeSink(r10, r20, grid.height, part.clip_20m))


@contextmanager
def scene_output(parts: list[PartOutput], grid: Grid, config: Any) -> Iterator[SceneOutput]:
    """Open the output file(s) of every part (the prediction first) in
    ``config.output_layout`` (module docstring) for ``grid``; ``config``: an
    ``InferenceConfig`` (compress, output_format, output_layout). The sink takes rows of
    10 channels per part. On a clean exit the rows handed over are written and every file
    renamed into place (the prediction's last); an error before the exit leaves none."""
    with ExitStack() as stack:
        opened = [_open_part(stack, part, grid, config) for part in parts]
        yield SceneOutput(
            [w for o in opened for w in o.writers],
            [r for o in opened for r in o.row_writers],
            _PartsSink([o.sink for o in opened]),
        )
