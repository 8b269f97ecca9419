"""Tiled, blended prediction of scenes of any size, with memory bounded by the tile size.

A scene (H x W pixels at 10 m) is cut into tiles of at most ``tile_size`` x ``tile_size`` pixels
(shaped to compute the fewest pixels; see :func:`plan_tiles`) whose offsets and sizes are
multiples of 4 (the 40 m SAR grid), overlapping by ``overlap`` pixels. Each tile is
predicted whole; its prediction is weighted by a window that is 0 within ``margin`` pixels of
every tile edge that lies inside the scene (those pixels saw zero padding instead of their real
neighbours) and rises along a raised-cosine ramp to 1 over the rest of the overlap. The blended
output is ``sum(weight * prediction) / sum(weight)``. With ``margin = receptive_field // 2`` and
``overlap >= receptive_field`` every pixel gets a positive total weight, and every prediction
that carries weight is the one an untiled run gives, so the tiled output equals whole-image
prediction to float tolerance: there are no seams.

Memory: tiles are processed one row of tiles at a time; only an accumulation buffer of one tile
row (tile height x W pixels, carrying the overlap into the next row) and the tiles in flight
are held, so memory does not grow with the scene height, and grows with its width only by that
buffer. Finished rows are handed to a writer as soon as no later tile can touch them.

Arrays are channels_last. Model inputs are in model units (``tml_cloudremoval.normalise``):
optical (h, w, 10) in [0, 5], SAR (h/4, w/4, 2) in [0, 2] on the 40 m grid aligned with the tile.
The scene path (:func:`predict_scene`) reads GeoTIFFs window by window through
``tml_cloudremoval.inference.scene`` and writes the output GeoTIFF atomically.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tml_cloudremoval.bands import SAR_FACTOR, TML_BAND_NAMES

logger = logging.getLogger(__name__)

ALIGN = SAR_FACTOR
"""Tile offsets and sizes are multiples of this (4: one 40 m SAR pixel is 4 x 4 optical pixels)."""

EMIT_ROWS = 128
"""Finished rows are handed to the writer in chunks of this many rows (bounds temporaries)."""

OUTPUT_DTYPES: tuple[str, ...] = ("uint16", "float32")
"""Output GeoTIFF types: uint16 DN (rounded, clipped to [0, 10000]) or float32 DN (clipped)."""


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


# --------------------------------------------------------------------------------------------
# Tile plan and blending weights
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    """One tile: position (row, col) in the plan, and its pixel window in the padded scene."""

    row: int
    col: int
    y0: int
    x0: int
    height: int
    width: int


@dataclass(frozen=True)
class TilePlan:
    """Tiles over a scene of ``height`` x ``width`` pixels (padded up to multiples of 4).

    ``ys``/``heights`` and ``xs``/``widths`` are the tile starts and lengths along each axis
    (balanced: lengths differ by at most 4 px; the last tile ends at the padded scene edge); every
    tile holds at most ``tile_size**2`` pixels. ``margin`` pixels at interior tile edges get zero
    weight.
    """

    height: int
    width: int
    tile_size: int
    overlap: int
    margin: int
    ys: tuple[int, ...]
    heights: tuple[int, ...]
    xs: tuple[int, ...]
    widths: tuple[int, ...]

    @property
    def padded_height(self) -> int:
        """Scene height rounded up to a multiple of 4 (what the tiles cover)."""
        return self.ys[-1] + self.heights[-1]

    @property
    def padded_width(self) -> int:
        """Scene width rounded up to a multiple of 4."""
        return self.xs[-1] + self.widths[-1]

    @property
    def n_rows(self) -> int:
        return len(self.ys)

    @property
    def n_cols(self) -> int:
        return len(self.xs)

    @property
    def n_tiles(self) -> int:
        return self.n_rows * self.n_cols

    def row(self, r: int) -> list[Tile]:
        """The tiles of tile row ``r``, left to right."""
        return [
            Tile(r, c, self.ys[r], self.xs[c], self.heights[r], self.widths[c])
            for c in range(self.n_cols)
        ]

    def tiles(self) -> Iterator[Tile]:
        """All tiles, row by row."""
        for r in range(self.n_rows):
            yield from self.row(r)

    def owned_pixels(self, tile: Tile) -> int:
        """Scene pixels this tile is the first to finish (they sum to height x width)."""
        y1 = self.ys[tile.row + 1] if tile.row + 1 < self.n_rows else self.padded_height
        x1 = self.xs[tile.col + 1] if tile.col + 1 < self.n_cols else self.padded_width
        return max(0, min(y1, self.height) - tile.y0) * max(0, min(x1, self.width) - tile.x0)

    @property
    def computed_pixels(self) -> int:
        """Pixels the model computes for the whole plan (overlaps counted each time)."""
        return sum(self.heights) * sum(self.widths)

    @property
    def efficiency(self) -> float:
        """Scene pixels / computed pixels: the best tiled-vs-raw throughput ratio possible."""
        return self.height * self.width / self.computed_pixels


def _axis_split(length: int, n: int, overlap: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``n`` tiles of balanced lengths (multiples of ALIGN, at most ALIGN apart) over ``length``
    pixels (a multiple of ALIGN), consecutive tiles sharing ``overlap`` pixels: (starts, lengths).
    """
    units, extra = divmod((length + (n - 1) * overlap) // ALIGN, n)
    lengths = tuple((units + (i < extra)) * ALIGN for i in range(n))
    starts = [0]
    for size in lengths[:-1]:
        starts.append(starts[-1] + size - overlap)
    return tuple(starts), lengths


def _longest_tile(length: int, n: int, overlap: int) -> int:
    """Length of the longest of ``n`` balanced tiles over ``length`` px (see _axis_split)."""
    return -(-(length + (n - 1) * overlap) // (n * ALIGN)) * ALIGN


def _tile_counts(height: int, width: int, tile_size: int, overlap: int) -> tuple[int, int]:
    """Tiles per axis (rows, cols) that compute the fewest pixels with tiles of at most
    ``tile_size**2`` pixels each; ties go to fewer tiles, then to shorter tiles (the blending
    buffer holds one row of tiles: tile height x scene width).

    The computed pixels are ``(height + (rows - 1) overlap) (width + (cols - 1) overlap)``. For
    each number of tile rows, the widest tile the pixel budget allows gives the fewest columns;
    rows are tried until ``(height + (rows - 1) overlap) width`` alone exceeds the best plan.
    Along a split axis every tile is longer than the overlap.
    """
    budget = tile_size * tile_size
    best: tuple[int, int, int, int, int] | None = None  # (cost, tiles, tile height, rows, cols)
    for rows in range(1, height // ALIGN + 1):
        if best is not None and (height + (rows - 1) * overlap) * width > best[0]:
            break  # more rows cost more whatever the columns
        tile_h = _longest_tile(height, rows, overlap)
        if rows > 1 and tile_h <= overlap:
            break
        max_w = budget // tile_h // ALIGN * ALIGN
        if width <= max_w:
            cols = 1
        elif max_w <= overlap:
            continue
        else:
            cols = math.ceil((width - overlap) / (max_w - overlap))
            while _longest_tile(width, cols, overlap) > max_w:  # rounding to ALIGN
                cols += 1
        cost = (height + (rows - 1) * overlap) * (width + (cols - 1) * overlap)
        key = (cost, rows * cols, tile_h, rows, cols)
        if best is None or key < best:
            best = key
    if best is None:
        raise ValueError(f"tile_size {tile_size} px is too small for an overlap of {overlap} px")
    return best[3], best[4]


def plan_tiles(
    height: int, width: int, tile_size: int, overlap: int, receptive_field: int
) -> TilePlan:
    """Plan tiles over a ``height`` x ``width`` scene.

    Tiles hold at most ``tile_size`` x ``tile_size`` pixels (the memory budget of one forward
    pass) but need not be square: the plan picks the numbers of tile rows and columns that make
    the model compute the fewest pixels (overlaps are computed twice), with balanced tile sizes.
    A 4096 px scene at 1280 gets 4 x 3 tiles of 1084 x 1416 px (efficiency 0.913, where square
    tiles of at most 1280 px would need 4 x 4 and reach 0.897); a 1500 px scene gets 2 x 1.

    Args:
        height, width: scene size in pixels (any; the plan covers it padded to multiples of 4).
        tile_size: side of the largest square tile in pixels (tiles hold at most tile_size**2
            pixels), a multiple of 4, larger than ``overlap``.
        overlap: pixels shared by neighbouring tiles, a multiple of 4, at least
            ``receptive_field`` (otherwise tiles would show seams).
        receptive_field: the model's receptive field in pixels (odd); the weight is zero within
            ``receptive_field // 2`` pixels of interior tile edges.

    Raises ``ValueError`` for sizes that break these rules.
    """
    if height < 1 or width < 1:
        raise ValueError(f"scene size must be positive, got {height} x {width}")
    if receptive_field < 1:
        raise ValueError(f"receptive field must be >= 1 pixel, got {receptive_field}")
    for name, value in (("tile_size", tile_size), ("overlap", overlap)):
        if value < 0 or value % ALIGN:
            raise ValueError(
                f"{name} must be a non-negative multiple of {ALIGN} (the 40 m SAR grid), "
                f"got {value}"
            )
    if overlap < receptive_field:
        raise ValueError(
            f"overlap {overlap} px is smaller than the model's receptive field "
            f"{receptive_field} px: tiles would show seams (use at least "
            f"{_round_up(receptive_field, ALIGN)})"
        )
    if tile_size <= overlap:
        raise ValueError(f"tile_size {tile_size} px must be larger than the overlap {overlap} px")
    height_p, width_p = _round_up(height, ALIGN), _round_up(width, ALIGN)
    rows, cols = _tile_counts(height_p, width_p, int(tile_size), int(overlap))
    ys, heights = _axis_split(height_p, rows, overlap)
    xs, widths = _axis_split(width_p, cols, overlap)
    return TilePlan(
        height=int(height),
        width=int(width),
        tile_size=int(tile_size),
        overlap=int(overlap),
        margin=int(receptive_field) // 2,
        ys=ys,
        heights=heights,
        xs=xs,
        widths=widths,
    )


def axis_weights(
    length: int, margin: int, ramp: int, start_is_edge: bool, end_is_edge: bool
) -> np.ndarray:
    """Blending weights along one tile axis: float32 (length,).

    At an interior edge (not the scene edge) the first ``margin`` pixels weigh 0, then the weight
    rises along a raised cosine over ``ramp`` pixels to 1. At a scene edge the weight is 1 up to
    the edge (the untiled run sees the same zero padding there).
    """
    i = np.arange(length, dtype=np.float64)
    ramp = max(int(ramp), 1)
    w = np.ones(length, dtype=np.float64)
    if not start_is_edge:
        w = np.minimum(w, np.clip((i - margin + 1) / ramp, 0.0, 1.0))
    if not end_is_edge:
        w = np.minimum(w, np.clip((length - margin - i) / ramp, 0.0, 1.0))
    return (0.5 - 0.5 * np.cos(np.pi * w)).astype(np.float32)


def tile_weights(plan: TilePlan, tile: Tile) -> np.ndarray:
    """Blending weights of one tile: float32 (tile.height, tile.width)."""
    ramp = plan.overlap - 2 * plan.margin
    wy = axis_weights(
        tile.height, plan.margin, ramp, tile.y0 == 0, tile.y0 + tile.height >= plan.padded_height
    )
    wx = axis_weights(
        tile.width, plan.margin, ramp, tile.x0 == 0, tile.x0 + tile.width >= plan.padded_width
    )
    return np.outer(wy, wx)


# --------------------------------------------------------------------------------------------
# Receptive field of a Keras model
# --------------------------------------------------------------------------------------------


def receptive_field_of(model: Any, sar_input: str = "sar", sar_factor: int = SAR_FACTOR) -> int:
    """Receptive field in 10 m pixels of a functional Keras model, from its layer graph.

    Walks from the output back to the inputs, adding ``(kernel - 1) // 2 * dilation`` pixels of
    the layer's own grid per side for each convolution or pooling, ``size - 1`` pixels of the
    output grid per side for each ``UpSampling2D`` (worst case over the alignment of a pixel
    within its block; a 40 m pixel feeds ``sar_factor`` x ``sar_factor`` outputs) and taking the
    widest branch at merges. The input named ``sar_input`` is on a grid ``sar_factor`` times
    coarser. Element-wise layers add nothing. For :func:`tml_cloudremoval.models.dsen2cr.build_dsen2cr`
    this equals ``model.receptive_field(blocks)``.
    """
    memo: dict[int, tuple[float, float]] = {}

    def walk(tensor: Any) -> tuple[float, float]:
        """(radius in 10 m pixels, pixel size of this tensor in 10 m pixels)."""
        key = id(tensor)
        if key in memo:
            return memo[key]
        op, node_index, _ = tensor._keras_history
        parents = list(op._inbound_nodes[node_index].input_tensors)
        if not parents:  # an input layer
            result = (0.0, float(sar_factor) if op.name == sar_input else 1.0)
        else:
            walked = [walk(t) for t in parents]
            radius = max(r for r, _ in walked)
            scale = min(s for _, s in walked)
            kind = type(op).__name__
            kernel = getattr(op, "kernel_size", None) or getattr(op, "pool_size", None)
            if kernel is not None:
                dilation = getattr(op, "dilation_rate", (1, 1))
                strides = getattr(op, "strides", (1, 1)) or (1, 1)
                reach = max(
                    (k - 1) * d - (k - 1) * d // 2 for k, d in zip(kernel, dilation, strict=True)
                )
                radius += reach * scale
                scale *= max(strides)
            elif kind == "UpSampling2D":
                size = max(op.size)
                scale /= size
                radius += (size - 1) * scale
                if getattr(op, "interpolation", "nearest") != "nearest":
                    radius += size * scale
            result = (radius, scale)
        memo[key] = result
        return result

    outputs = model.outputs if isinstance(model.outputs, list | tuple) else [model.outputs]
    radius = max(walk(t)[0] for t in outputs)
    return 2 * math.ceil(radius) + 1


def default_overlap(receptive_field: int) -> int:
    """Smallest seam-free overlap: the receptive field rounded up to a multiple of 4."""
    return _round_up(receptive_field, ALIGN)


# --------------------------------------------------------------------------------------------
# The engine: read tiles, predict batches, blend, hand finished rows on
# --------------------------------------------------------------------------------------------


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
    predicted: int
    skipped: int
    seconds: float
    predict_seconds: float
    scene_pixels: int
    computed_pixels: int

    @property
    def mpx_per_s(self) -> float:
        return self.scene_pixels / 1e6 / max(self.seconds, 1e-9)


def keras_predictor(model: Any) -> PredictBatch:
    """A batch predictor over a Keras model with inputs ``"optical"`` (and ``"sar"``)."""
    names = [t.name for t in model.inputs]
    uses_sar = "sar" in names

    def predict(optical: np.ndarray, sar: np.ndarray | None) -> np.ndarray:
        inputs = {"optical": optical}
        if uses_sar:
            if sar is None:
                raise ValueError("the model takes a 'sar' input but the tiles carry no SAR")
            inputs["sar"] = sar
        return np.asarray(model.predict_on_batch(inputs), dtype=np.float32)

    return predict


def _batches(plan: TilePlan, batch_size: int) -> list[tuple[int, list[Tile]]]:
    """Tiles grouped into batches of equal shape, never across tile rows: [(row, tiles)]."""
    out: list[tuple[int, list[Tile]]] = []
    for r in range(plan.n_rows):
        current: list[Tile] = []
        for tile in plan.row(r):
            if current and (len(current) == batch_size or current[0].width != tile.width):
                out.append((r, current))
                current = []
            current.append(tile)
        out.append((r, current))
    return out


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
    rows, top to bottom, as soon as no later tile can change them:
    ``values`` (n, width, bands) float32 in model units (0 where no tile carried weight, i.e.
    only on pixels that are not valid), ``valid`` (n, width) bool or None when no tile reported a
    nodata mask. Rows beyond the scene (padding to a multiple of 4) are never emitted.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    width_p = plan.padded_width
    rows_max = max(plan.heights)
    acc = np.zeros((rows_max, width_p, bands), dtype=np.float32)
    wsum = np.zeros((rows_max, width_p), dtype=np.float32)
    valid = np.ones((rows_max, width_p), dtype=bool)
    has_mask = False
    batches = _batches(plan, batch_size)
    predicted = skipped = 0
    done_pixels = 0
    predict_seconds = 0.0
    start = time.perf_counter()

    def read_batch(tiles: list[Tile]) -> list[TileInput]:
        return [read_tile(t) for t in tiles]

    def finish_row(r: int) -> None:
        y0 = plan.ys[r]
        end = plan.ys[r + 1] if r + 1 < plan.n_rows else plan.padded_height
        n_final = end - y0
        m = min(end, plan.height) - y0
        # hand the finished rows on in chunks: temporaries stay EMIT_ROWS x width
        for c0 in range(0, max(m, 0), EMIT_ROWS):
            c1 = min(c0 + EMIT_ROWS, m)
            w = wsum[c0:c1, : plan.width]
            ok = valid[c0:c1, : plan.width]
            if np.any(ok & (w <= 0)):
                raise RuntimeError("tile plan left valid pixels without weight (a bug)")
            values = acc[c0:c1, : plan.width] / np.where(w > 0, w, 1.0)[..., np.newaxis]
            emit_rows(y0 + c0, values, ok.copy() if has_mask else None)
        keep = plan.heights[r] - n_final
        if keep > 0:
            acc[:keep] = acc[n_final : n_final + keep]
            wsum[:keep] = wsum[n_final : n_final + keep]
            valid[:keep] = valid[n_final : n_final + keep]
        acc[max(keep, 0) :] = 0.0
        wsum[max(keep, 0) :] = 0.0
        valid[max(keep, 0) :] = True

    def blend_batch(r: int, tiles: list[Tile], inputs: list[TileInput]) -> int:
        """Predict the tiles that hold data and add them, weighted, to the row buffer."""
        nonlocal has_mask, predict_seconds
        todo = [k for k, t in enumerate(inputs) if t.valid is None or t.valid.any()]
        out = None
        if todo:
            if len(todo) == 1:  # no copy for the usual batch of one
                optical = inputs[todo[0]].optical[np.newaxis]
                sar = inputs[todo[0]].sar
                sar = None if sar is None else sar[np.newaxis]
            else:
                optical = np.stack([inputs[k].optical for k in todo])
                sars = [inputs[k].sar for k in todo]
                sar = None if any(s is None for s in sars) else np.stack(sars)
            t0 = time.perf_counter()
            out = predict_batch(optical, sar)
            predict_seconds += time.perf_counter() - t0
            if not out.flags.writeable or np.may_share_memory(out, optical):
                out = out.copy()  # weighted in place below: it must be ours
            del optical, sar
        for k, tile in enumerate(tiles):
            rows = slice(tile.y0 - plan.ys[r], tile.y0 - plan.ys[r] + tile.height)
            cols = slice(tile.x0, tile.x0 + tile.width)
            if inputs[k].valid is not None:
                has_mask = True
                valid[rows, cols] = inputs[k].valid
            if out is not None and k in todo:
                w = tile_weights(plan, tile)
                pred = out[todo.index(k)]
                pred *= w[..., np.newaxis]
                acc[rows, cols] += pred
                wsum[rows, cols] += w
        return len(todo)

    bar = tqdm(total=plan.n_tiles, unit="tile", desc=desc, disable=not progress, leave=True)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tile-reader") as pool:
            future = pool.submit(read_batch, batches[0][1])
            for i, (r, tiles) in enumerate(batches):
                inputs = future.result()
                if i + 1 < len(batches):
                    future = pool.submit(read_batch, batches[i + 1][1])
                n_predicted = blend_batch(r, tiles, inputs)
                del inputs  # tile-sized arrays die here, not when the next batch arrives
                predicted += n_predicted
                skipped += len(tiles) - n_predicted
                done_pixels += sum(plan.owned_pixels(t) for t in tiles)
                bar.update(len(tiles))
                elapsed = time.perf_counter() - start
                bar.set_postfix_str(f"{done_pixels / 1e6 / max(elapsed, 1e-9):.3f} Mpx/s")
                if i + 1 == len(batches) or batches[i + 1][0] != r:
                    finish_row(r)
    finally:
        bar.close()
    return TileRunStats(
        tiles=plan.n_tiles,
        predicted=predicted,
        skipped=skipped,
        seconds=time.perf_counter() - start,
        predict_seconds=predict_seconds,
        scene_pixels=plan.height * plan.width,
        computed_pixels=plan.computed_pixels,
    )


def _overlap_for(model: Any, overlap: int | None) -> tuple[int, int]:
    """(receptive field, overlap) for a model; overlap None -> the smallest seam-free one."""
    rf = receptive_field_of(model)
    return rf, default_overlap(rf) if overlap is None else int(overlap)


def predict_array(
    model: Any,
    optical: np.ndarray,
    sar: np.ndarray | None = None,
    *,
    tile_size: int = 1280,
    overlap: int | None = None,
    batch_size: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Tiled prediction of an in-memory image (for tests and benchmarks).

    ``optical`` (H, W, 10) and ``sar`` (ceil(H/4), ceil(W/4), 2) in model units -> (H, W, 10)
    float32 model units. Sizes that are not multiples of 4 are padded by edge replication.
    """
    optical = np.asarray(optical, dtype=np.float32)
    height, width, bands = optical.shape
    rf, overlap = _overlap_for(model, overlap)
    plan = plan_tiles(height, width, tile_size, overlap, rf)
    pad = ((0, plan.padded_height - height), (0, plan.padded_width - width), (0, 0))
    optical_p = np.pad(optical, pad, mode="edge")
    if sar is not None:
        sar = np.asarray(sar, dtype=np.float32)
        expected = (plan.padded_height // ALIGN, plan.padded_width // ALIGN)
        if sar.shape[:2] != expected:
            raise ValueError(
                f"SAR is {sar.shape[:2]}, expected {expected} for a {height} x {width} image"
            )
    out = np.zeros((height, width, bands), dtype=np.float32)

    def read(tile: Tile) -> TileInput:
        o = optical_p[tile.y0 : tile.y0 + tile.height, tile.x0 : tile.x0 + tile.width]
        s = None
        if sar is not None:
            y, x = tile.y0 // ALIGN, tile.x0 // ALIGN
            s = sar[y : y + tile.height // ALIGN, x : x + tile.width // ALIGN]
        return TileInput(o, s)

    def emit(y0: int, values: np.ndarray, _valid: np.ndarray | None) -> None:
        out[y0 : y0 + values.shape[0]] = values

    run_tiled(
        plan,
        read,
        keras_predictor(model),
        emit,
        bands=bands,
        batch_size=batch_size,
        progress=progress,
    )
    return out


# --------------------------------------------------------------------------------------------
# The scene path: GeoTIFF in, GeoTIFF out
# --------------------------------------------------------------------------------------------


def predict_scene(
    model: Any,
    s2_path: str | os.PathLike,
    s1_path: str | os.PathLike | None,
    output_path: str | os.PathLike,
    *,
    tile_size: int = 1280,
    overlap: int | None = None,
    batch_size: int = 1,
    output_dtype: str = "uint16",
    sar_method: str = "mean",
    compress: str = "deflate",
    gdal_cache_mb: int = 64,
    progress: bool = True,
) -> dict[str, Any]:
    """Remove clouds from one scene: cloudy optical GeoTIFF + SAR GeoTIFF -> cloud-free GeoTIFF.

    Args:
        model: Keras model with inputs "optical" (and "sar"), see ``tml_cloudremoval.models.dsen2cr``.
        s2_path: optical GeoTIFF at 10 m, the 10 TML bands or a 13-band L1C stack (bands picked
            by name from the band descriptions when they name bands, else by count), DN.
        s1_path: SAR GeoTIFF, VV and VH in dB, any resolution and CRS overlapping the scene; it
            is averaged onto the 40 m grid aligned with the scene (None for optical-only models).
        output_path: the 10-band GeoTIFF to write (scene CRS, transform, size, nodata; band
            descriptions; tiled, deflate compressed); written to a temporary file in the same
            folder and renamed when complete.
        tile_size, overlap, batch_size: see :func:`plan_tiles` (overlap None: smallest seam-free).
        output_dtype: "uint16" (DN, rounded) or "float32" (DN), both clipped to [0, 10000].
        sar_method: "mean" (of dB) or "linear_power", see ``tml_cloudremoval.sar``.
        compress: GeoTIFF compression of the output: "deflate" (readable everywhere), "zstd"
            (about 2 x faster to write than deflate at level 1, GDAL >= 2.3), "lzw" or "none".
        gdal_cache_mb: GDAL block cache while reading/writing (keeps memory bounded).
        progress: show a tqdm bar (tiles, Mpx/s).

    Returns a report dict (paths, size, tiles, seconds, Mpx/s, ...). Raises ``ValueError``
    naming the file for bad inputs, before any prediction.
    """
    import rasterio

    from tml_cloudremoval import scene as sc

    if output_dtype not in OUTPUT_DTYPES:
        raise ValueError(f"output_dtype must be one of {OUTPUT_DTYPES}, got {output_dtype!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    start = time.perf_counter()
    pair = sc.check_scene(s2_path, s1_path, output_path)
    info = pair.optical
    rf, overlap = _overlap_for(model, overlap)
    plan = plan_tiles(info.height, info.width, int(tile_size), overlap, rf)
    uses_sar = "sar" in [t.name for t in model.inputs]
    if uses_sar and pair.sar is None:
        raise ValueError(f"{info.path}: the model needs SAR but no SAR file was given")

    with rasterio.Env(GDAL_CACHEMAX=int(gdal_cache_mb)):
        sar_norm, coverage = sc.load_sar_40m(pair, method=sar_method) if uses_sar else (None, 1.0)
        out_nodata = sc.output_nodata(info.nodata, output_dtype)
        tags = {"SOURCE_OPTICAL": info.path.name}
        if pair.sar is not None:
            tags["SOURCE_SAR"] = pair.sar.path.name
        with (
            sc.open_optical(info) as reader,
            sc.SceneWriter(
                output_path,
                info,
                dtype=output_dtype,
                nodata=out_nodata,
                compress=compress,
                tags=tags,
            ) as writer,
            # exits before the writer does: no write is in flight when the file is closed
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="scene-writer") as write_pool,
        ):
            in_flight: list[Future] = []

            def read(tile: Tile) -> TileInput:
                optical, valid = reader.read_tile(tile.y0, tile.x0, tile.height, tile.width)
                s = None
                if sar_norm is not None:
                    y, x = tile.y0 // ALIGN, tile.x0 // ALIGN
                    s = sar_norm[y : y + tile.height // ALIGN, x : x + tile.width // ALIGN]
                return TileInput(optical, s, valid)

            def write(y0: int, values: np.ndarray, valid: np.ndarray | None) -> None:
                writer.write_rows(y0, sc.to_output(values, valid, output_dtype, out_nodata))

            def emit(y0: int, values: np.ndarray, valid: np.ndarray | None) -> None:
                # convert + compress in the background, one chunk at a time (bounded memory)
                if in_flight:
                    in_flight.pop().result()
                in_flight.append(write_pool.submit(write, y0, values, valid))

            stats = run_tiled(
                plan,
                read,
                keras_predictor(model),
                emit,
                batch_size=int(batch_size),
                progress=progress,
                desc=Path(s2_path).name,
            )
            if in_flight:
                in_flight.pop().result()
    seconds = time.perf_counter() - start  # checks, SAR warp, tiles, writing: all of it
    mpx_per_s = info.height * info.width / 1e6 / max(seconds, 1e-9)
    report = {
        "s2_path": str(s2_path),
        "s1_path": None if s1_path is None else str(s1_path),
        "output_path": str(output_path),
        "height": info.height,
        "width": info.width,
        "bands_from": info.band_source,
        "tile_size": plan.tile_size,
        "overlap": plan.overlap,
        "receptive_field": rf,
        "batch_size": int(batch_size),
        "output_dtype": output_dtype,
        "tiles": stats.tiles,
        "tile_grid": [plan.n_rows, plan.n_cols],
        "largest_tile": [max(plan.heights), max(plan.widths)],
        "tiles_predicted": stats.predicted,
        "tiles_skipped_nodata": stats.skipped,
        "sar_coverage": round(float(coverage), 6),
        "seconds": round(seconds, 3),
        "model_seconds": round(stats.predict_seconds, 3),
        "mpx_per_s": round(mpx_per_s, 6),
        "tiling_efficiency": round(plan.efficiency, 4),
    }
    logger.info(
        "%s -> %s: %d x %d px, %d tiles (%d without data), %.1f s, %.4f Mpx/s",
        Path(s2_path).name,
        output_path,
        info.height,
        info.width,
        stats.tiles,
        stats.skipped,
        seconds,
        mpx_per_s,
    )
    return report
