"""The tiling engine on arrays alone: blending, skipped tiles, tiled == whole-image."""

from __future__ import annotations

import numpy as np
import pytest

from tml_cloudremoval.inference.engine import (
    RowBlender,
    TileInput,
    predict_array,
    predict_tiles,
    run_tiled,
)
from tml_cloudremoval.inference.planner import plan_tiles, tile_weights


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
        predict_array(
            model,
            np.zeros((40, 40, 10), np.float32),
            np.zeros((9, 10, 2), np.float32),
            tile_size=64,
        )


def test_row_blender_is_the_weighted_mean_of_the_tiles():
    """Against a plain weighted mean over the whole padded image, tile by tile."""
    rng = np.random.default_rng(7)
    plan = plan_tiles(60, 50, 32, 16, 15)
    preds = {t: rng.uniform(0, 5, (t.height, t.width, 2)).astype(np.float32) for t in plan.tiles()}
    num = np.zeros((plan.padded_height, plan.padded_width, 2))
    den = np.zeros((plan.padded_height, plan.padded_width))
    for t, p in preds.items():
        w = tile_weights(plan, t).astype(np.float64)
        num[t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width] += w[..., None] * p
        den[t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width] += w
    blender = RowBlender(plan, bands=2)
    rows = []
    for r in range(plan.n_rows):
        for t in plan.row(r):
            blender.add(t, preds[t].copy(), None)
        rows += [(y0, v.copy(), m) for y0, v, m in blender.finish_row(r)]
    assert all(m is None for _, _, m in rows)
    assert [y for y, _, _ in rows] == sorted(y for y, _, _ in rows)
    out = np.concatenate([v for _, v, _ in rows])
    np.testing.assert_allclose(out, (num / den[..., None])[:60, :50], rtol=1e-5)


def test_predict_tiles_skips_tiles_without_data_and_returns_owned_arrays():
    full = TileInput(np.ones((8, 8, 1), np.float32), None)
    empty = TileInput(np.ones((8, 8, 1), np.float32), None, np.zeros((8, 8), bool))
    seen = []

    def identity(o, s):
        seen.append(o.shape)
        return o

    preds, seconds = predict_tiles([empty, full], identity)
    assert preds[0] is None and seen == [(1, 8, 8, 1)] and seconds >= 0
    preds[1] *= 2  # the caller may weight it in place: the input is untouched
    assert (full.optical == 1).all()
