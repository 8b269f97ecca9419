"""The tiling engine: predict the tiles of a plan, blend them, hand finished rows on.

Arrays only: the engine knows no files, no rasterio and no scene layout. It is handed a tile
reader (``read_tile(tile) -> TileInput``), a batch predictor and a row sink, and keeps its state
in explicit objects: :class:`RowBlender` (the accumulation buffer of one row of tiles) and
:class:`TileRunStats` (what the run did).

Memory: tiles are processed one row of tiles at a time; only the buffer of one tile row (tile
height x scene width, carrying the overlap into the next row) and the tiles in flight are held,
so memory does not grow with the scene height. Finished rows are handed on in chunks of at most
``EMIT_ROWS`` rows as soon as no later tile can touch them. The next batch of tiles is read in a
background thread while the model predicts the current one.

Model units (``tml_cloudremoval.normalise``), channels_last: optical (h, w, 10) in [0, 5], SAR
(h/4, w/4, 2) in [0, 2] on the 40 m grid aligned with the tile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.inference.planner import (
    ALIGN,
    Tile,
    TilePlan,
    plan_batches,
    plan_tiles,
    seam_free_overlap,
    tile_weights,
)
from tml_cloudremoval.models.receptive_field import receptive_field
from tml_cloudremoval.models.uncertainty import PREDICTION_OUTPUT

EMIT_ROWS = 128
"""Finished rows are handed on in chunks of this many rows (bounds temporaries)."""


@dataclass
class TileInput:
    """What a tile reader returns.

    ``optical``: (h, w, 10) float32 model units; ``sar``: (h/4, w/4, 2) float32 model units or
    None for optical-only models; ``valid``: (h, w) bool, False where the scene has no data
    (None: all valid). A tile without any valid pixel is not predicted.
    """

    optical: np.ndarray
    sar: np.ndarray | None
    valid: np.ndarray | None = None


ReadTile = Callable[[Tile], TileInput]
PredictBatch = Callable[[np.ndarray, np.ndarray | None], np.ndarray]
EmitRows = Callable[[int, np.ndarray, np.ndarray | None], None]


@dataclass
class TileRunStats:
    """What a tiled run did: tiles predicted/skipped, time (s), throughput (scene Mpx/s).

    ``predict_seconds``: time spent inside the model calls (the rest is reading, blending and
    handing rows on).
    """

    tiles: int
    scene_pixels: int
    computed_pixels: int
    predicted: int = 0
    skipped: int = 0
    seconds: float = 0.0
    predict_seconds: float = 0.0

    @property
    def mpx_per_s(self) -> float:
        return self.scene_pixels / 1e6 / max(self.seconds, 1e-9)


def sar_of_tile(sar_40m: np.ndarray | None, tile: Tile) -> np.ndarray | None:
    """The 40 m SAR pixels under ``tile``: (tile.height/4, tile.width/4, 2), or None."""
    if sar_40m is None:
        return None
    y, x = tile.y0 // ALIGN, tile.x0 // ALIGN
    return sar_40m[y : y + tile.height // ALIGN, x : x + tile.width // ALIGN]


def keras_predictor(model: Any) -> PredictBatch:
    """A batch predictor over a Keras model with inputs ``"optical"`` (and ``"sar"``).

    A model with dict outputs (``models.uncertainty``) gives its ``"prediction"`` alone here;
    ``inference.predictors`` gives its uncertainty as well. Numpy in, numpy float32 out on every
    Keras backend (``predict_on_batch``; under JAX compiled once per tile-batch shape)."""
    uses_sar = "sar" in [t.name for t in model.inputs]

    def predict(optical: np.ndarray, sar: np.ndarray | None) -> np.ndarray:
        inputs = {"optical": optical}
        if uses_sar:
            if sar is None:
                raise ValueError("the model takes a 'sar' input but the tiles carry no SAR")
            inputs["sar"] = sar
        out = model.predict_on_batch(inputs)
        if isinstance(out, dict):
            out = out[PREDICTION_OUTPUT]
        return np.asarray(out, dtype=np.float32)

    return predict


class RowBlender:
    """The blending state of one row of tiles: weighted sums, weight sums and validity.

    Buffers of (largest tile height, padded scene width): ``acc`` (.., bands) float32 sums of
    weight x prediction, ``wsum`` float32 sums of weights, ``valid`` bool. ``has_mask`` turns
    True once any tile reported a nodata mask.
    """

    def __init__(self, plan: TilePlan, bands: int) -> None:
        self.plan = plan
        rows = max(plan.heights)
        self.acc = np.zeros((rows, plan.padded_width, bands), dtype=np.float32)
        self.wsum = np.zeros((rows, plan.padded_width), dtype=np.float32)
        self.valid = np.ones((rows, plan.padded_width), dtype=bool)
        self.has_mask = False

    def add(self, tile: Tile, prediction: np.ndarray | None, valid: np.ndarray | None) -> None:
        """Add one tile: its (h, w, bands) prediction (weighted in place; None: not predicted)
        and its (h, w) validity (None: all valid)."""
        r0 = tile.y0 - self.plan.ys[tile.row]
        rows, cols = slice(r0, r0 + tile.height), slice(tile.x0, tile.x0 + tile.width)
        if valid is not None:
            self.has_mask = True
            self.valid[rows, cols] = valid
        if prediction is not None:
            w = tile_weights(self.plan, tile)
            prediction *= w[..., np.newaxis]
            self.acc[rows, cols] += prediction
            self.wsum[rows, cols] += w

    def finish_row(self, r: int) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        """Blended scene rows of tile row ``r`` that no later tile touches, top to bottom, in
        chunks of at most ``EMIT_ROWS``: (y0, values (n, width, bands), valid (n, width) | None).
        Exhaust it: the buffer moves on to the next tile row after the last chunk."""
        plan = self.plan
        y0 = plan.ys[r]
        end = plan.ys[r + 1] if r + 1 < plan.n_rows else plan.padded_height
        m = min(end, plan.height) - y0
        for c0 in range(0, max(m, 0), EMIT_ROWS):
            c1 = min(c0 + EMIT_ROWS, m)
            w = self.wsum[c0:c1, : plan.width]
            ok = self.valid[c0:c1, : plan.width]
            if np.any(ok & (w <= 0)):
                raise RuntimeError("tile plan left valid pixels without weight (a bug)")
            values = self.acc[c0:c1, : plan.width] / np.where(w > 0, w, 1.0)[..., np.newaxis]
            yield y0 + c0, values, ok.copy() if self.has_mask else None
        keep = max(plan.heights[r] - (end - y0), 0)  # rows the next tile row overlaps
        for buf, fill in ((self.acc, 0.0), (self.wsum, 0.0), (self.valid, True)):
            if keep:
                buf[:keep] = buf[end - y0 : end - y0 + keep]
            buf[keep:] = fill


def predict_tiles(
    inputs: list[TileInput], predict_batch: PredictBatch
) -> tuple[list[np.ndarray | None], float]:
    """Predict the tiles that hold data in one batch: ([prediction | None per tile], seconds).

    Each prediction is an (h, w, bands) float32 array the caller owns (safe to weight in place).
    """
    todo = [k for k, t in enumerate(inputs) if t.valid is None or t.valid.any()]
    out: list[np.ndarray | None] = [None] * len(inputs)
    if not todo:
        return out, 0.0
    if len(todo) == 1:  # no copy for the usual batch of one
        optical = inputs[todo[0]].optical[np.newaxis]
        sar = inputs[todo[0]].sar
        sar = None if sar is None else sar[np.newaxis]
    else:
        optical = np.stack([inputs[k].optical for k in todo])
        sars = [inputs[k].sar for k in todo]
        sar = None if any(s is None for s in sars) else np.stack(sars)
    t0 = time.perf_counter()
    batch = predict_batch(optical, sar)
    seconds = time.perf_counter() - t0
    if not batch.flags.writeable or np.may_share_memory(batch, optical):
        batch = batch.copy()  # weighted in place by the blender: it must be ours
    for i, k in enumerate(todo):
        out[k] = batch[i]
    return out, seconds


def _read_batch(read_tile: ReadTile, tiles: list[Tile]) -> list[TileInput]:
    return [read_tile(t) for t in tiles]


def run_tiled(
    plan: TilePlan,
    read_tile: ReadTile,
    predict_batch: PredictBatch,
    emit_rows: EmitRows,
    *,
    bands: int = len(TML_BAND_NAMES),
    batch_size: int = 1,
    progress: bool = False,
    desc: str = "tiles",
) -> TileRunStats:
    """Predict every tile of ``plan``, blend, and hand finished scene rows to ``emit_rows``.

    ``read_tile(tile)`` runs in a background thread, one batch ahead of the model.
    ``predict_batch(optical (b,h,w,C), sar (b,h/4,w/4,2) | None) -> (b,h,w,bands)``.
    ``emit_rows(y0, values, valid)`` receives consecutive blocks of at most ``EMIT_ROWS`` scene
    rows, top to bottom: ``values`` (n, width, bands) float32 in model units (0 where no tile
    carried weight, i.e. only on pixels that are not valid), ``valid`` (n, width) bool or None
    when no tile reported a nodata mask. Rows beyond the scene (padding) are never emitted.
    """
    from tqdm.auto import tqdm

    batches = plan_batches(plan, batch_size)
    blender = RowBlender(plan, bands)
    stats = TileRunStats(plan.n_tiles, plan.height * plan.width, plan.computed_pixels)
    done_pixels, start = 0, time.perf_counter()
    bar = tqdm(total=plan.n_tiles, unit="tile", desc=desc, disable=not progress, leave=True)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tile-reader") as pool:
            future = pool.submit(_read_batch, read_tile, batches[0][1])
            for i, (r, tiles) in enumerate(batches):
                inputs = future.result()
                if i + 1 < len(batches):
                    future = pool.submit(_read_batch, read_tile, batches[i + 1][1])
                predictions, seconds = predict_tiles(inputs, predict_batch)
                for tile, given, pred in zip(tiles, inputs, predictions, strict=True):
                    blender.add(tile, pred, given.valid)
                stats.predicted += sum(p is not None for p in predictions)
                stats.predict_seconds += seconds
                del inputs, predictions  # tile-sized arrays die here, not a batch later
                done_pixels += sum(plan.owned_pixels(t) for t in tiles)
                bar.update(len(tiles))
                elapsed = time.perf_counter() - start
                bar.set_postfix_str(f"{done_pixels / 1e6 / max(elapsed, 1e-9):.3f} Mpx/s")
                if i + 1 == len(batches) or batches[i + 1][0] != r:
                    for y0, values, valid in blender.finish_row(r):
                        emit_rows(y0, values, valid)
    finally:
        bar.close()
    stats.skipped = stats.tiles - stats.predicted
    stats.seconds = time.perf_counter() - start
    return stats


class _ArrayTiles:
    """Tile reader over in-memory arrays: optical padded to the plan, SAR on the 40 m grid."""

    def __init__(self, optical: np.ndarray, sar: np.ndarray | None) -> None:
        self.optical, self.sar = optical, sar

    def __call__(self, tile: Tile) -> TileInput:
        optical = self.optical[tile.y0 : tile.y0 + tile.height, tile.x0 : tile.x0 + tile.width]
        return TileInput(optical, sar_of_tile(self.sar, tile))


class _ArraySink:
    """Row sink that gathers the blended rows into one (H, W, bands) array."""

    def __init__(self, height: int, width: int, bands: int) -> None:
        self.out = np.zeros((height, width, bands), dtype=np.float32)

    def __call__(self, y0: int, values: np.ndarray, _valid: np.ndarray | None) -> None:
        self.out[y0 : y0 + values.shape[0]] = values


def tile_array(
    predict_batch: PredictBatch,
    receptive_field_px: int,
    optical: np.ndarray,
    sar: np.ndarray | None,
    *,
    bands: int,
    tile_size: int,
    overlap: int | None = None,
    batch_size: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Tiled prediction of an in-memory image by any batch predictor giving ``bands``
    channels: ``optical`` (H, W, C) and ``sar`` (ceil(H/4), ceil(W/4), 2) in model units ->
    (H, W, bands) float32 blended rows. Sizes that are not multiples of 4 are padded by edge
    replication. ``overlap`` None: the smallest seam-free one for ``receptive_field_px``."""
    optical = np.asarray(optical, dtype=np.float32)
    height, width = optical.shape[:2]
    rf = receptive_field_px
    plan = plan_tiles(
        height, width, tile_size, seam_free_overlap(rf) if overlap is None else overlap, rf
    )
    pad = ((0, plan.padded_height - height), (0, plan.padded_width - width), (0, 0))
    if sar is not None:
        sar = np.asarray(sar, dtype=np.float32)
        expected = (plan.padded_height // ALIGN, plan.padded_width // ALIGN)
        if sar.shape[:2] != expected:
            raise ValueError(
                f"SAR is {sar.shape[:2]}, expected {expected} for a {height} x {width} image"
            )
    sink = _ArraySink(height, width, bands)
    tiles = _ArrayTiles(np.pad(optical, pad, mode="edge"), sar)
    run_tiled(
        plan, tiles, predict_batch, sink, bands=bands, batch_size=batch_size, progress=progress
    )
    return sink.out


def predict_array(
    model: Any,
    optical: np.ndarray,
    sar: np.ndarray | None = None,
    *,
    tile_size: int,
    overlap: int | None = None,
    batch_size: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Tiled prediction of an in-memory image (for tests, benchmarks and notebooks).

    ``optical`` (H, W, 10) and ``sar`` (ceil(H/4), ceil(W/4), 2) in model units -> (H, W, 10)
    float32 model units. Sizes that are not multiples of 4 are padded by edge replication.
    ``overlap`` None: the smallest seam-free one for the model's receptive field. (An
    aleatoric model: its prediction; ``predictors.predict_array_parts`` gives the rest.)
    """
    return tile_array(
        keras_predictor(model),
        receptive_field(model),
        optical,
        sar,
        bands=np.shape(optical)[-1],
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        progress=progress,
    )
