"""Uncertainty rasters of a scene: one pass writes the cloud-free scene and its uncertainty
(aleatoric model) or spread (ensemble) on the same grid, layout and format, atomically."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.inference.cog import cog_layout_faults
from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.fill import fill_weights
from tml_cloudremoval.inference.inputs import SceneSource, check_scenes
from tml_cloudremoval.inference.native_layout import BANDS_10M, BANDS_20M, native_20m_path
from tml_cloudremoval.inference.report import RUN_FACTS_TAG, read_run_facts
from tml_cloudremoval.inference.scene import predict_scene, sibling_path

TILE = 48  # 2 x 4 tiles: the blending is exercised


def cfg(**changes) -> InferenceConfig:
    return InferenceConfig(
        **{"tile_size": TILE, "progress": False, "sar_method": "mean", **changes}
    )


def test_aleatoric_scene_writes_the_uncertainty_raster(aleatoric, model, scene, tmp_path, h):
    facts = predict_scene(aleatoric, scene["s2"], scene["s1"], scene["out"], cfg())
    path = sibling_path(scene["out"], "aleatoric")
    assert path.name == "cloudfree_uncertainty.tif" and facts["uncertainty_path"] == str(path)
    assert facts["epistemic_path"] is None and facts["uncertainty_units"] == "reflectance"
    std, meta = h.read(path)
    assert meta["dtype"] == "float32" and np.isnan(meta["nodata"]) and meta["count"] == 10
    assert meta["descriptions"] == TML_BAND_NAMES and meta["crs"] == h.UTM32
    assert meta["transform"] == h.TRANSFORM and meta["shape"] == (h.H, h.W)
    assert meta["tags"]["TML_UNCERTAINTY"] == "aleatoric"
    assert "reflectance" in meta["tags"]["TML_UNCERTAINTY_UNITS"]
    assert json.loads(meta["tags"][RUN_FACTS_TAG]) == read_run_facts(scene["out"])
    with rasterio.open(path) as ds:
        assert ds.units == ("reflectance",) * 10 and ds.scales == (1.0,) * 10
    assert cog_layout_faults(path) == []
    want, valid = h.reference_std(aleatoric, scene["s2"], scene["s1"])
    assert (~valid).sum() > 50 and np.isnan(std[~valid]).all()  # nodata where the input is
    np.testing.assert_allclose(std[valid], want[valid], rtol=1e-4)  # tiled == whole image
    # the cloud-free file is the plain twin's, bit for bit
    plain = predict_scene(model, scene["s2"], scene["s1"], tmp_path / "plain.tif", cfg())
    assert (
        plain["uncertainty_path"] is None
        and not sibling_path(plain["output_path"], "aleatoric").exists()
    )
    np.testing.assert_array_equal(h.read(scene["out"])[0], h.read(tmp_path / "plain.tif")[0])


def test_plain_scene_is_the_engine_rows_bit_for_bit(model, scene, tmp_path, h):
    """The plain model's product equals, byte for byte in its pixels, the composition the scene
    path had before uncertainty existed: keras_predictor -> run_tiled -> to_output ->
    SceneWriter (no parts, no splitting)."""
    from tml_cloudremoval.inference.engine import keras_predictor, run_tiled
    from tml_cloudremoval.inference.planner import plan_tiles
    from tml_cloudremoval.inference.reader import load_sar_40m, open_optical
    from tml_cloudremoval.inference.scene import _SceneTiles
    from tml_cloudremoval.inference.writer import BackgroundRowWriter, SceneWriter, output_nodata

    config = cfg(output_format="gtiff")
    predict_scene(model, scene["s2"], scene["s1"], scene["out"], config)
    pair = check_scenes([SceneSource("s", scene["s2"], scene["s1"])], config)[0]
    info = pair.optical
    plan = plan_tiles(info.height, info.width, TILE, 16, 15)
    nodata = output_nodata(info.nodata, "uint16", info.header.dtype)
    sar, _ = load_sar_40m(pair, "mean")
    old = tmp_path / "old.tif"
    with open_optical(info) as optical, SceneWriter(old, info, nodata=nodata) as writer:
        with BackgroundRowWriter(writer, "uint16", nodata) as rows:
            run_tiled(plan, _SceneTiles(optical, sar), keras_predictor(model), rows)
    np.testing.assert_array_equal(h.read(scene["out"])[0], h.read(old)[0])


def test_fill_clouds_uncertainty_is_zero_where_the_input_is_kept(aleatoric, scene, tmp_path, h):
    mask = np.zeros((h.H, h.W, 1), np.uint8)
    mask[30:60, 35:75] = 1
    mask_path = h.write_tif(tmp_path / "mask.tif", mask)
    config = cfg(fill="clouds", mask_path=str(mask_path), feather_px=4, output_format="gtiff")
    predict_scene(aleatoric, scene["s2"], scene["s1"], scene["out"], config)
    filled, _ = h.read(sibling_path(scene["out"], "aleatoric"))
    full_path = tmp_path / "all.tif"
    predict_scene(aleatoric, scene["s2"], scene["s1"], full_path, cfg(output_format="gtiff"))
    full, _ = h.read(sibling_path(full_path, "aleatoric"))
    w = fill_weights(mask[..., 0], 4)
    valid = ~np.isnan(full[..., 0])
    assert (filled[valid & (w == 0)] == 0).all()  # the observation itself: 0
    inner = valid & (w == 1)
    assert inner.sum() > 400 and np.array_equal(filled[inner], full[inner])
    ramp = valid & (w > 0) & (w < 1)
    assert ramp.sum() > 50
    np.testing.assert_allclose(filled[ramp], (w[..., None] * full)[ramp], rtol=1e-5)
    assert np.isnan(filled[~valid]).all()


def test_native_layout_uncertainty_follows_the_layout(aleatoric, scene, tmp_path, h):
    predict_scene(aleatoric, scene["s2"], scene["s1"], scene["out"], cfg(output_layout="native"))
    path = sibling_path(scene["out"], "aleatoric")
    std10, meta10 = h.read(path)
    std20, meta20 = h.read(native_20m_path(path))
    stack = tmp_path / "stack.tif"
    predict_scene(aleatoric, scene["s2"], scene["s1"], stack, cfg())
    full, _ = h.read(sibling_path(stack, "aleatoric"))
    assert meta10["descriptions"] == ("B2", "B3", "B4", "B8") and meta20["count"] == 6
    assert meta20["shape"] == ((h.H + 1) // 2, (h.W + 1) // 2)
    np.testing.assert_array_equal(std10, full[..., list(BANDS_10M)])
    # 20 m: the root of the 2 x 2 mean of the variance over the valid pixels (plain loop)
    var = full[..., list(BANDS_20M)].astype(np.float64) ** 2
    for i, j in [(0, 0), (10, 10), (20, 30), (45, 53), (5, 2)]:
        block = var[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].reshape(-1, 6)
        good = block[~np.isnan(block).any(axis=1)]
        if good.size:
            np.testing.assert_allclose(std20[i, j], np.sqrt(good.mean(0)), rtol=1e-5)
        else:
            assert np.isnan(std20[i, j]).all()
    assert np.isnan(std20[0, 0]).all()  # the nodata wedge


def test_ensemble_scene_writes_mean_and_spread(model, scene, tmp_path, h):
    import keras

    from tml_cloudremoval.models.dsen2cr import build_dsen2cr

    keras.utils.set_random_seed(31)
    second = build_dsen2cr(features=8, blocks=1, tail_init="he_uniform")
    facts = predict_scene(
        [model, second], scene["s2"], scene["s1"], scene["out"], cfg(output_dtype="float32")
    )
    path = sibling_path(scene["out"], "epistemic")
    assert facts["epistemic_path"] == str(path) and facts["uncertainty_path"] is None
    spread, meta = h.read(path)
    assert meta["tags"]["TML_UNCERTAINTY"] == "epistemic"
    inputs, valid = h.model_inputs(scene["s2"], scene["s1"])
    raw = np.stack([m.predict_on_batch(inputs)[0] for m in (model, second)]).astype(np.float64)
    assert (raw.std(0) * 0.2)[valid].mean() > 1e-3  # the members disagree
    np.testing.assert_allclose(spread[valid], (raw.std(0) * 0.2)[valid], atol=2e-5, rtol=1e-3)
    assert np.isnan(spread[~valid]).all()
    out, _ = h.read(scene["out"])  # the members' mean, in DN
    mean_dn = np.clip(raw.mean(0) * 2000, 0, 10000)
    np.testing.assert_allclose(out[valid], mean_dn[valid], atol=0.05, rtol=0)


def test_interrupted_run_leaves_neither_file(aleatoric, scene, monkeypatch):
    calls = []
    real = aleatoric.predict_on_batch

    def fail_later(inputs):
        calls.append(1)
        if len(calls) > 4:
            raise RuntimeError("interrupted")
        return real(inputs)

    monkeypatch.setattr(aleatoric, "predict_on_batch", fail_later)
    with pytest.raises(RuntimeError, match="interrupted"):
        predict_scene(aleatoric, scene["s2"], scene["s1"], scene["out"], cfg())
    names = [p.name for p in scene["out"].parent.iterdir() if not p.name.endswith(".lock")]
    assert names == []


def test_uncertainty_path_over_an_input_is_refused(aleatoric, scene, monkeypatch):
    monkeypatch.setattr(aleatoric, "predict_on_batch", lambda *a: pytest.fail("predicted"))
    with pytest.raises(ValueError, match="would overwrite the input file"):
        predict_scene(
            aleatoric, scene["s2"], scene["s1"], scene["out"], cfg(), uncertainty_path=scene["s1"]
        )
    with pytest.raises(ValueError, match="have the same path"):
        predict_scene(
            aleatoric, scene["s2"], scene["s1"], scene["out"], cfg(), uncertainty_path=scene["out"]
        )
