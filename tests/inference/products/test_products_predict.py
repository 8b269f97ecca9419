"""Products through the whole scene path: same ground -> same prediction, whatever the input
kind and offset; georeferencing, band order and nodata survive; faults before any prediction."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.inputs import SceneSource, check_scenes, scene_plan
from tml_cloudremoval.inference.scene import predict_scene
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.raster import write_geotiff_atomic

CONFIG = InferenceConfig(tile_size=64, progress=False, sar_method="mean")


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(3)
    return build_dsen2cr(features=8, blocks=1, tail_init="he_uniform")


@pytest.fixture(scope="module")
def sar(tmp_path_factory, ground):
    rng = np.random.default_rng(5)
    vv = rng.uniform(-20, -5, (ground.H // 4, ground.W // 4))
    data = np.stack([vv, vv - 7.0], axis=-1).astype(np.float32)
    t = ground.transform
    return write_geotiff_atomic(
        tmp_path_factory.mktemp("sar") / "s1.tif",
        data,
        crs=ground.crs,
        transform=Affine(40.0, 0.0, t.c, 0.0, -40.0, t.f),
    )


def _predict(model, optical, sar, out, config=CONFIG):
    predict_scene(model, optical, sar, out, config)
    with rasterio.open(out) as ds:
        return np.moveaxis(ds.read(), 0, -1), ds.crs, ds.transform, ds.nodata, ds.descriptions


def test_same_ground_same_prediction_for_every_input_kind(model, products, ground, sar, tmp_path):
    plain, crs, transform, nodata, descriptions = _predict(
        model, products.safe_0209, sar, tmp_path / "a.tif"
    )
    assert crs == ground.crs and transform == ground.transform and nodata == 0
    assert descriptions == TML_BAND_NAMES
    assert (plain[ground.bands["B2"] == 0] == 0).all()  # the nodata wedge stays nodata
    assert (plain[ground.bands["B2"] > 0] > 0).all()
    for i, path in enumerate((products.zip_0400, products.safe_0400, products.tml)):
        other, *_ = _predict(model, path, sar, tmp_path / f"{i}.tif")
        np.testing.assert_array_equal(other, plain)


def test_a_stack_with_the_offset_and_dn_offset_predicts_as_one_without(
    model, ground, sar, tmp_path
):
    dn = np.stack([ground.bands[b] for b in TML_BAND_NAMES], axis=-1)
    kwargs = {"crs": ground.crs, "transform": ground.transform, "nodata": 0}
    plain = write_geotiff_atomic(tmp_path / "plain.tif", dn, **kwargs)
    shifted = np.where(dn > 0, dn + 1000, 0).astype(np.uint16)
    offset = write_geotiff_atomic(tmp_path / "offset.tif", shifted, **kwargs)
    expected, *_ = _predict(model, plain, sar, tmp_path / "p.tif")
    config = InferenceConfig(tile_size=64, progress=False, dn_offset=-1000, sar_method="mean")
    got, *_ = _predict(model, offset, sar, tmp_path / "o.tif", config)
    np.testing.assert_array_equal(got, expected)
    raw, *_ = _predict(model, offset, sar, tmp_path / "r.tif")  # auto: no metadata -> 0
    assert not np.array_equal(raw, expected)


def test_faults_of_every_product_are_listed_before_any_prediction(products, sar, tmp_path):
    scenes = [
        SceneSource("l2a", products.l2a, sar),
        SceneSource("b", products.safe_0400, sar),
        SceneSource("c", tmp_path / "missing.SAFE", sar),
    ]
    with pytest.raises(SceneError) as info:
        check_scenes(scenes, InferenceConfig(dn_offset=0))
    text = str(info.value)
    assert "3 fault(s)" in text and "L2A" in text
    assert "inference.dn_offset is 0 but" in text and "states -1000" in text
    assert "missing.SAFE" in text
    assert not list(tmp_path.glob("*.tif"))


def test_the_plan_records_the_radiometry_and_the_log_says_why(products, sar, caplog):
    scenes = [SceneSource("b", products.zip_0400, sar)]
    with caplog.at_level("INFO", logger="tml_cloudremoval.inference.inputs"):
        plan = scene_plan(scenes, check_scenes(scenes))
    entry = plan["scenes"][0]
    assert entry["bands_from"] == "safe L1C"
    assert entry["radiometry"]["dn_offset"]["B2"] == -1000.0
    assert "dn_offset -1000, quantification 10000 from" in caplog.text
    assert "baseline 04.00" in caplog.text


def test_a_quicklook_reads_a_product(products, ground):
    from tml_cloudremoval.inference.quicklook import read_rgb

    rgb, valid = read_rgb(products.zip_0400, max_size=64)
    assert rgb.shape == (48, 54, 3) and valid is not None and valid.any()
