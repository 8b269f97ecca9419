"""Tile plans: where the tiles of a scene lie, and how their predictions are weighted.

A scene (H x W pixels at 10 m) is cut into tiles of at most ``tile_size`` x ``tile_size`` pixels
(shaped to compute the fewest pixels; see :func:`plan_tiles`) whose offsets and sizes are
multiples of 4 (the 40 m SAR grid), overlapping by ``overlap`` pixels. Each tile's prediction is
weighted by a window (:func:`tile_weights`) that is 0 within ``margin`` pixels of every tile edge
that lies inside the scene (those pixels saw zero padding instead of their real neighbours) and
rises along a raised-cosine ramp to 1 over the rest of the overlap. With ``margin =
receptive_field // 2`` and ``overlap >= receptive_field`` every pixel gets a positive total weight,
and every prediction that carries weight is the one an untiled run gives: no seams.

Pure arithmetic on sizes: no arrays of the scene, no files, no model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.errors import SceneError

ALIGN = SAR_FACTOR
"""Tile offsets and sizes are multiples of this (4: one 40 m SAR pixel is 4 x 4 optical pixels)."""


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


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
        raise SceneError(f"tile_size {tile_size} px is too small for an overlap of {overlap} px")
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

    Raises ``SceneError`` for sizes that break these rules.
    """
    if height < 1 or width < 1:
        raise SceneError(f"scene size must be positive, got {height} x {width}")
    if receptive_field < 1:
        raise SceneError(f"receptive field must be >= 1 pixel, got {receptive_field}")
    for name, value in (("tile_size", tile_size), ("overlap", overlap)):
        if value < 0 or value % ALIGN:
            raise SceneError(
                f"{name} must be a non-negative multiple of {ALIGN} (the 40 m SAR grid), "
                f"got {value}"
            )
    if overlap < receptive_field:
        raise SceneError(
            f"overlap {overlap} px is smaller than the model's receptive field "
            f"{receptive_field} px: tiles would show seams (use at least "
            f"{_round_up(receptive_field, ALIGN)})"
        )
    if tile_size <= overlap:
        raise SceneError(f"tile_size {tile_size} px must be larger than the overlap {overlap} px")
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


def seam_free_overlap(receptive_field: int) -> int:
    """Smallest seam-free overlap: the receptive field rounded up to a multiple of 4."""
    return _round_up(receptive_field, ALIGN)


def plan_batches(plan: TilePlan, batch_size: int) -> list[tuple[int, list[Tile]]]:
    """Tiles grouped into batches of equal shape, never across tile rows: [(row, tiles)]."""
    if batch_size < 1:
        raise SceneError(f"batch_size must be >= 1, got {batch_size}")
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
