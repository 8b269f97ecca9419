"""Tile plans: coverage on the 40 m grid, fewest computed pixels, weights, batches."""

from __future__ import annotations

import numpy as np
import pytest

from tml_cloudremoval.inference.planner import (
    axis_weights,
    plan_batches,
    plan_tiles,
    seam_free_overlap,
    tile_weights,
)


def _coverage(plan) -> np.ndarray:
    total = np.zeros((plan.padded_height, plan.padded_width), dtype=np.float64)
    for tile in plan.tiles():
        total[tile.y0 : tile.y0 + tile.height, tile.x0 : tile.x0 + tile.width] += tile_weights(
            plan, tile
        )
    return total


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap", "rf"),
    [(100, 100, 48, 16, 15), (101, 203, 64, 24, 15), (30, 30, 64, 16, 15), (1000, 40, 256, 76, 75)],
)
def test_plan_covers_scene_on_40m_grid(height, width, tile, overlap, rf):
    plan = plan_tiles(height, width, tile, overlap, rf)
    assert plan.padded_height == -(-height // 4) * 4
    assert plan.padded_width == -(-width // 4) * 4
    for t in plan.tiles():
        assert t.y0 % 4 == 0 and t.x0 % 4 == 0 and t.height % 4 == 0 and t.width % 4 == 0
        assert t.height * t.width <= tile * tile  # the pixel budget of one forward pass
    # consecutive tiles overlap by exactly `overlap` px; the last one ends at the padded edge
    for starts, lengths, end in (
        (plan.ys, plan.heights, plan.padded_height),
        (plan.xs, plan.widths, plan.padded_width),
    ):
        assert starts[0] == 0 and starts[-1] + lengths[-1] == end
        for a, la, b in zip(starts[:-1], lengths[:-1], starts[1:], strict=True):
            assert a + la - b == overlap
        assert max(lengths) - min(lengths) <= 4  # balanced
    # every pixel gets weight, and the scene-pixel counts add up
    assert (_coverage(plan) > 0).all()
    assert sum(plan.owned_pixels(t) for t in plan.tiles()) == height * width


def _brute_force_plans(height, width, tile, overlap):
    """Every (rows, cols) split with balanced tiles within the budget: [(cost, tiles, h, r, c)]."""
    hp, wp = -(-height // 4) * 4, -(-width // 4) * 4
    plans = []
    for rows in range(1, hp // 4 + 1):
        for cols in range(1, wp // 4 + 1):
            h = -(-(hp + (rows - 1) * overlap) // (4 * rows)) * 4  # longest balanced tile
            w = -(-(wp + (cols - 1) * overlap) // (4 * cols)) * 4
            if h * w > tile * tile or (rows > 1 and h <= overlap) or (cols > 1 and w <= overlap):
                continue
            cost = (hp + (rows - 1) * overlap) * (wp + (cols - 1) * overlap)
            plans.append((cost, rows * cols, h, rows, cols))
    return plans


def test_random_plans_cover_every_pixel_within_budget():
    """Seeded random scenes, receptive fields, overlaps and budgets (tight ones included, where
    tiles barely exceed the overlap): every pixel gets weight, tiles stay within the budget."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        rf = int(rng.choice([3, 7, 15, 35, 75]))
        overlap = -(-rf // 4) * 4 + 4 * int(rng.integers(0, 3))
        tile = overlap + 4 * int(rng.integers(1, 40))
        height, width = (int(v) for v in rng.integers(1, 400, 2))
        plan = plan_tiles(height, width, tile, overlap, rf)
        assert all(t.height * t.width <= tile * tile for t in plan.tiles())
        assert (_coverage(plan) > 0).all(), (height, width, tile, overlap, rf)
        assert sum(plan.owned_pixels(t) for t in plan.tiles()) == height * width


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap"),
    [(100, 100, 48, 16), (101, 203, 64, 24), (150, 70, 40, 16), (240, 96, 36, 16), (7, 300, 24, 8)],
)
def test_plan_computes_fewest_pixels(height, width, tile, overlap):
    """Against every possible split: least computed pixels, then fewest tiles, then shortest."""
    plan = plan_tiles(height, width, tile, overlap, overlap - 1)
    best = min(_brute_force_plans(height, width, tile, overlap))
    assert plan.computed_pixels == best[0]
    assert (plan.n_tiles, max(plan.heights)) == best[1:3]


def test_plan_of_a_4096_scene_at_1280():
    """Hand-computed: 4 x 3 tiles of 1084 x 1416 px; square 1280 px tiles would need 4 x 4."""
    plan = plan_tiles(4096, 4096, 1280, 76, 75)
    assert (plan.n_rows, plan.n_cols) == (4, 3)
    # rows: 4096 + 3 x 76 = 4324 px = 1081 units of 4 -> 271, 270, 270, 270 units
    assert plan.heights == (1084, 1080, 1080, 1080) and plan.widths == (1416, 1416, 1416)
    assert plan.ys == (0, 1008, 2012, 3016) and plan.xs == (0, 1340, 2680)
    assert plan.efficiency == pytest.approx(4096**2 / ((4096 + 3 * 76) * (4096 + 2 * 76)))
    assert plan.efficiency > (4096 / (4096 + 3 * 76)) ** 2


def test_plan_small_scene_is_one_tile():
    plan = plan_tiles(30, 21, 64, 16, 15)
    assert (plan.n_rows, plan.n_cols) == (1, 1)
    assert (plan.heights[0], plan.widths[0]) == (32, 24)
    assert plan.efficiency == pytest.approx(30 * 21 / (32 * 24))


@pytest.mark.parametrize(
    ("tile", "overlap", "rf", "match"),
    [
        (64, 12, 15, "smaller than the model's receptive field"),
        (64, 18, 15, "multiple of 4"),
        (62, 16, 15, "multiple of 4"),
        (16, 16, 15, "larger than the overlap"),
    ],
)
def test_plan_rejects_bad_sizes(tile, overlap, rf, match):
    with pytest.raises(ValueError, match=match):
        plan_tiles(100, 100, tile, overlap, rf)


def test_axis_weights_zero_in_margin_at_interior_edges_only():
    w = axis_weights(20, margin=3, ramp=4, start_is_edge=False, end_is_edge=False)
    np.testing.assert_array_equal(w[:3], 0)
    np.testing.assert_array_equal(w[-3:], 0)
    assert (w[3:-3] > 0).all() and w[3] < 1 and w[10] == 1
    np.testing.assert_allclose(w, w[::-1])
    w = axis_weights(20, margin=3, ramp=4, start_is_edge=True, end_is_edge=True)
    np.testing.assert_array_equal(w, 1)
    # raised cosine: halfway up the ramp the weight is 0.5
    w = axis_weights(20, margin=2, ramp=4, start_is_edge=False, end_is_edge=True)
    assert w[3] == pytest.approx(0.5)


def test_seam_free_overlap_rounds_up_to_the_40m_grid():
    assert [seam_free_overlap(rf) for rf in (1, 4, 15, 75, 76, 77)] == [4, 4, 16, 76, 76, 80]


def test_batches_hold_equal_shapes_within_one_tile_row():
    plan = plan_tiles(100, 203, 64, 24, 15)  # columns of two widths
    batches = plan_batches(plan, 3)
    assert [t for _, tiles in batches for t in tiles] == list(plan.tiles())
    for r, tiles in batches:
        assert len(tiles) <= 3 and {t.row for t in tiles} == {r}
        assert len({(t.height, t.width) for t in tiles}) == 1
    with pytest.raises(ValueError, match="batch_size"):
        plan_batches(plan, 0)
