"""Tile plan, blending weights, receptive field, and tiled == whole-image prediction."""

from __future__ import annotations

import numpy as np
import pytest

from tml_cloudremoval.inference.tiling import (
    TileInput,
    axis_weights,
    default_overlap,
    plan_tiles,
    predict_array,
    receptive_field_of,
    run_tiled,
    tile_weights,
)
from tml_cloudremoval.models.dsen2cr import build_dsen2cr, receptive_field


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(1)
    return build_dsen2cr(features=8, blocks=1)


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


@pytest.mark.parametrize(("blocks", "sar"), [(0, True), (1, True), (3, True), (2, False)])
def test_receptive_field_from_graph_matches_model(blocks, sar):
    m = build_dsen2cr(features=4, blocks=blocks, include_sar=sar)
    assert receptive_field_of(m) == receptive_field(blocks, include_sar=sar)
    assert default_overlap(receptive_field_of(m)) % 4 == 0


def test_receptive_field_bounds_impulse_response(model):
    """An independent check: changing one input pixel changes no output beyond the radius."""
    radius = receptive_field_of(model) // 2
    rng = np.random.default_rng(0)
    optical = rng.uniform(0, 5, (1, 64, 64, 10)).astype(np.float32)
    sar = rng.uniform(0, 2, (1, 16, 16, 2)).astype(np.float32)
    base = model.predict_on_batch({"optical": optical, "sar": sar})[0]
    poked_o, poked_s = optical.copy(), sar.copy()
    poked_o[0, 32, 32] += 3.0
    poked_s[0, 8, 8] += 1.0  # the 40 m pixel over rows/cols 32..35
    out = model.predict_on_batch({"optical": poked_o, "sar": poked_s})[0]
    changed = np.argwhere(np.abs(out - base).max(axis=-1) > 0)
    assert len(changed) > 0
    assert changed.min() >= 32 - radius and changed.max() <= 35 + radius


def test_blending_identity_predictor_reproduces_input_row_by_row():
    """With a predictor that returns its input, blending must give the input back exactly."""
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 5, (150, 70, 3)).astype(np.float32)
    plan = plan_tiles(150, 70, 40, 16, 15)
    padded = np.pad(image, ((0, 2), (0, 2), (0, 0)), mode="edge")
    emitted = []

    def read(t):
        return TileInput(padded[t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width], None)

    def emit(y0, values, valid):
        emitted.append((y0, values.copy()))
        assert valid is None

    stats = run_tiled(plan, read, lambda o, s: o, emit, bands=3, batch_size=3)
    assert [y for y, _ in emitted] == list(plan.ys)  # one block of finished rows per tile row
    out = np.concatenate([v for _, v in emitted])
    np.testing.assert_allclose(out, image, rtol=1e-6)
    assert stats.predicted == plan.n_tiles and stats.skipped == 0


def test_tiles_without_data_are_skipped():
    plan = plan_tiles(64, 64, 32, 16, 15)
    calls = []

    def read(t):
        cols = np.arange(t.x0, t.x0 + t.width)
        valid = np.broadcast_to(cols >= 32, (t.height, t.width))  # scene cols 0..31: no data
        return TileInput(np.ones((t.height, t.width, 2), np.float32), None, valid)

    def predict(o, s):
        calls.append(len(o))
        return o

    rows = []
    stats = run_tiled(plan, read, predict, lambda y, v, m: rows.append((v, m)), bands=2)
    assert stats.skipped == plan.n_rows and stats.predicted == plan.n_tiles - plan.n_rows
    values = np.concatenate([v for v, _ in rows])
    valid = np.concatenate([m for _, m in rows])
    assert not valid[:, :32].any() and valid[:, 32:].all()
    np.testing.assert_allclose(values[valid], 1.0, rtol=1e-6)


@pytest.mark.parametrize(("tile", "batch"), [(32, 1), (48, 3), (200, 1)])
def test_tiled_equals_whole_image_prediction(model, tile, batch):
    rng = np.random.default_rng(3)
    height, width = 118, 90  # not multiples of 4: padded by edge replication
    optical = rng.uniform(0, 5, (height, width, 10)).astype(np.float32)
    sar = rng.uniform(0, 2, (30, 23, 2)).astype(np.float32)
    padded = np.pad(optical, ((0, 2), (0, 2), (0, 0)), mode="edge")
    whole = model.predict_on_batch({"optical": padded[None], "sar": sar[None]})[0]
    tiled = predict_array(model, optical, sar, tile_size=tile, batch_size=batch)
    assert tiled.shape == (height, width, 10)
    np.testing.assert_allclose(tiled, whole[:height, :width], atol=2e-5, rtol=0)


def test_predict_array_checks_sar_shape(model):
    with pytest.raises(ValueError, match="SAR is"):
        predict_array(model, np.zeros((40, 40, 10), np.float32), np.zeros((9, 10, 2), np.float32))
