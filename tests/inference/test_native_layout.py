"""output_layout: native: 10 m bands on the 10 m grid, 20 m bands by 2 x 2 nodata-aware mean."""

from __future__ import annotations

import numpy as np
import rasterio
from affine import Affine

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.native_layout import (
    BANDS_10M,
    BANDS_20M,
    _NativeSink,
    mean_2x2,
    native_20m_path,
)
from tml_cloudremoval.inference.scene import predict_scene


def _plain_mean_2x2(values, valid):
    """Independent loop implementation."""
    n, w, c = values.shape
    out = np.zeros(((n + 1) // 2, (w + 1) // 2, c))
    ok = np.zeros(out.shape[:2], bool)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = values[2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            good = valid[2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            if good.any():
                out[i, j] = block[good].mean(axis=0)
                ok[i, j] = True
    return out, ok


def test_band_split_is_the_tml_layout():
    assert [TML_BAND_NAMES[i] for i in BANDS_10M] == ["B2", "B3", "B4", "B8"]
    assert [TML_BAND_NAMES[i] for i in BANDS_20M] == ["B5", "B6", "B7", "B8A", "B11", "B12"]
    assert native_20m_path("a/x_cloudfree.tif").as_posix() == "a/x_cloudfree_20m.tif"


def test_mean_2x2_is_nodata_aware_with_odd_edges():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 5, (7, 9, 3)).astype(np.float32)
    valid = rng.uniform(size=(7, 9)) > 0.3
    valid[:2, :2] = False  # a block with no valid pixel
    means, ok = mean_2x2(values, valid)
    ref, ref_ok = _plain_mean_2x2(values, valid)
    assert means.shape == (4, 5, 3) and np.array_equal(ok, ref_ok) and not ok[0, 0]
    np.testing.assert_allclose(means[ok], ref[ok], rtol=1e-6)
    plain, none = mean_2x2(values, None)
    assert none is None
    np.testing.assert_allclose(plain, _plain_mean_2x2(values, np.ones((7, 9), bool))[0], rtol=1e-6)


def test_sink_pairs_rows_across_odd_blocks():
    got10, got20 = [], []
    sink = _NativeSink(lambda *a: got10.append(a), lambda *a: got20.append(a), height=7)
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 5, (7, 4, 10)).astype(np.float32)
    for y0, n in [(0, 3), (3, 3), (6, 1)]:
        sink(y0, values[y0 : y0 + n], None)
    assert [a[0] for a in got10] == [0, 3, 6] and [a[0] for a in got20] == [0, 1, 3]
    rows20 = np.concatenate([a[1] for a in got20])
    np.testing.assert_allclose(rows20, mean_2x2(values[..., BANDS_20M], None)[0], rtol=1e-6)


def test_native_scene_grids_bands_and_values(model, scene, tmp_path, h):
    config = InferenceConfig(
        tile_size=48, progress=False, output_layout="native", sar_method="mean"
    )
    predict_scene(model, scene["s2"], scene["s1"], scene["out"], config)
    stack = tmp_path / "stack.tif"
    predict_scene(
        model,
        scene["s2"],
        scene["s1"],
        stack,
        InferenceConfig(tile_size=48, progress=False, output_dtype="uint16", sar_method="mean"),
    )
    full, _ = h.read(stack)
    out10, meta10 = h.read(scene["out"])
    out20, meta20 = h.read(native_20m_path(scene["out"]))
    assert meta10["descriptions"] == ("B2", "B3", "B4", "B8") and meta10["transform"] == h.TRANSFORM
    assert meta20["descriptions"] == ("B5", "B6", "B7", "B8A", "B11", "B12")
    assert meta20["transform"] == h.TRANSFORM @ Affine.scale(2)  # same origin, 20 m pixels
    assert meta20["shape"] == ((h.H + 1) // 2, (h.W + 1) // 2) and meta20["crs"] == h.UTM32
    assert meta10["nodata"] == meta20["nodata"] == 0 and "TML_INFERENCE" in meta20["tags"]
    assert np.array_equal(out10, full[..., list(BANDS_10M)])
    valid = (full != 0).all(-1)
    ref, ok = _plain_mean_2x2(full[..., list(BANDS_20M)].astype(float), valid)
    assert np.array_equal(out20[~ok], np.zeros_like(out20[~ok]))  # nodata blocks
    # mean of unrounded DN rounded once vs mean of rounded DN (0.5 + 0.5), plus nodata moves (1 / 4)
    assert np.abs(out20[ok] - ref[ok]).max() <= 1.25
    with rasterio.open(native_20m_path(scene["out"])) as ds:
        assert ds.scales == (1e-4,) * 6
