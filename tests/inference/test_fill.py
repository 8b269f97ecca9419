"""fill: clouds: weights by hand, clear pixels untouched, the halo gives whole-image weights."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from tml_cloudremoval.inference.fill import CloudFillSink, blend_clouds, fill_weights


def test_weights_ramp_inside_the_mask_only():
    mask = np.zeros((1, 12), np.uint8)
    mask[0, 3:12] = 1  # clear 0..2, covered 3..11
    w = fill_weights(mask, feather_px=4)
    # distance to the nearest clear pixel: 1, 2, 3, 4, 5, ... -> /4, capped at 1
    np.testing.assert_allclose(w[0], [0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1])
    assert (fill_weights(mask, 0)[0] == mask[0]).all()
    unknown = np.full((3, 3), 255, np.uint8)
    assert (fill_weights(unknown, 4) == 0).all()  # unknown mask: keep the input


def test_blend_keeps_clear_pixels_bit_identical():
    rng = np.random.default_rng(0)
    inputs = rng.uniform(0, 5, (6, 7, 3)).astype(np.float32)
    pred = rng.uniform(0, 5, (6, 7, 3)).astype(np.float32)
    weights = np.zeros((6, 7), np.float32)
    weights[2:4, 2:5] = [[0.5, 1, 0.25], [1, 1, 1]]
    out = blend_clouds(inputs, pred, weights)
    clear = weights == 0
    assert np.array_equal(out[clear], inputs[clear])
    np.testing.assert_allclose(out[2, 2], 0.5 * inputs[2, 2] + 0.5 * pred[2, 2], rtol=1e-6)
    assert np.array_equal(out[3, 3], pred[3, 3])


def test_sink_weights_in_row_blocks_equal_the_whole_image():
    rng = np.random.default_rng(1)
    mask = (rng.uniform(size=(40, 30)) > 0.3).astype(np.uint8)
    mask[:, :3] = 0
    sink = CloudFillSink(lambda *a: None, lambda y0, n: None, mask, feather_px=5)
    whole = np.minimum(distance_transform_edt(mask == 1) / 5, 1)  # independent: scipy direct
    blocks = np.concatenate([sink.weights(y0, 7) for y0 in range(0, 35, 7)] + [sink.weights(35, 5)])
    np.testing.assert_allclose(blocks, whole, rtol=1e-6)


def test_sink_passes_filled_rows_on():
    got = {}
    mask = np.array([[0, 1, 1]], np.uint8)
    inputs = np.full((1, 3, 2), 1.0, np.float32)

    def emit(y0, values, valid):
        got["rows"] = (y0, values.copy(), valid)

    sink = CloudFillSink(emit, lambda y0, n: inputs[y0 : y0 + n], mask, feather_px=2)
    sink(0, np.full((1, 3, 2), 3.0, np.float32), None)
    y0, values, valid = got["rows"]
    np.testing.assert_allclose(values[0, :, 0], [1.0, 2.0, 3.0])  # w = 0, 0.5, 1
    assert y0 == 0 and valid is None


def test_variance_channels_after_the_prediction_scale_by_w_squared():
    """Uncertainty rows (inference.predictors): the kept input has variance 0, the ramp w^2."""
    got = {}
    mask = np.array([[0, 1, 1]], np.uint8)
    inputs = np.full((1, 3, 2), 1.0, np.float32)
    sink = CloudFillSink(lambda y0, v, m: got.update(v=v.copy()), lambda y0, n: inputs, mask, 2)
    rows = np.concatenate([np.full((1, 3, 2), 3.0), np.full((1, 3, 1), 0.04)], -1)
    sink(0, rows.astype(np.float32), None)
    np.testing.assert_allclose(got["v"][0, :, 0], [1.0, 2.0, 3.0])  # w = 0, 0.5, 1
    np.testing.assert_allclose(got["v"][0, :, 2], [0.0, 0.01, 0.04])  # w^2 x variance
    assert got["v"].shape == (1, 3, 3) and got["v"].dtype == np.float32
