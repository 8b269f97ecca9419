"""Scene path: GeoTIFF in, georeferenced GeoTIFF out (reader -> planner -> engine -> writer);
checks before prediction, nodata, SAR warp, atomic writes, run facts in the product."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from tml_cloudremoval.bands import S2_BAND_NAMES, TML_BAND_NAMES, tml_band_indices
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.inputs import SceneSource, check_scenes
from tml_cloudremoval.inference.report import RUN_FACTS_TAG, read_run_facts
from tml_cloudremoval.inference.scene import predict_scene

TILE = 48  # 2 x 4 tiles of 56 x 40 px (budget 48 x 48) with the tiny model's overlap of 16


def cfg(**changes) -> InferenceConfig:
    return InferenceConfig(
        **{"tile_size": TILE, "progress": False, "sar_method": "mean", **changes}
    )


def test_tiled_scene_equals_whole_image_and_keeps_nodata(model, scene, h):
    report = predict_scene(
        model, scene["s2"], scene["s1"], scene["out"], cfg(output_dtype="float32")
    )
    out, meta = h.read(scene["out"])
    ref, valid = h.reference(model, scene["s2"], scene["s1"])
    assert (~valid).sum() > 50  # the wedge is there
    np.testing.assert_allclose(out[valid], ref[valid], atol=0.05, rtol=0)
    assert (out[~valid] == 0).all()
    assert report["tiles"] == 8 and report["height"] == h.H and report["width"] == h.W
    assert report["tile_grid"] == [2, 4] and report["largest_tile"] == [56, 40]
    assert 0 < report["sar_coverage"] < 1  # the NaN hole in the SAR
    assert meta["dtype"] == "float32" and meta["nodata"] == 0


def test_output_georeferencing_uint16(model, scene, h):
    predict_scene(model, scene["s2"], scene["s1"], scene["out"], cfg())
    out, meta = h.read(scene["out"])
    assert meta["crs"] == h.UTM32 and meta["transform"] == h.TRANSFORM
    assert meta["shape"] == (h.H, h.W) and meta["count"] == 10 and meta["dtype"] == "uint16"
    assert meta["nodata"] == 0 and meta["descriptions"] == TML_BAND_NAMES
    assert meta["tiled"] and meta["compress"].name.lower() == "deflate"
    ref, valid = h.reference(model, scene["s2"], scene["s1"])
    assert (out[~valid] == 0).all()  # nodata stays nodata ...
    assert (out[valid] > 0).all()  # ... and is never produced where there is data
    assert np.abs(out[valid].astype(float) - np.rint(ref[valid])).max() <= 1
    assert not list(scene["out"].parent.glob(".*tmp"))  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(scene["out"].stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_13_band_stack_and_band_names_from_descriptions(model, scene, tmp_path, h):
    tml = h.make_optical()
    stack = np.full((h.H, h.W, 13), 4321, np.uint16)
    stack[..., tml_band_indices(S2_BAND_NAMES)] = tml
    s2_13 = h.write_tif(tmp_path / "l1c.tif", stack, nodata=0)
    order = [9, 3, 0, 1, 2, 4, 5, 6, 7, 8]  # shuffled bands, named "B02"-style
    named = [f"B{n[1:].zfill(2)}" if n[-1] != "A" else n for n in TML_BAND_NAMES]
    s2_named = h.write_tif(
        tmp_path / "named.tif", tml[..., order], nodata=0, descriptions=[named[i] for i in order]
    )
    outs = []
    for i, s2 in enumerate((scene["s2"], s2_13, s2_named)):
        out_path = tmp_path / f"o{i}.tif"
        report = predict_scene(model, s2, scene["s1"], out_path, cfg())
        outs.append(h.read(out_path)[0])
        assert report["bands_from"] == ("descriptions" if i == 2 else "count")
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:32633"])
def test_sar_in_another_crs_and_resolution(model, scene, tmp_path, crs, h):
    # A 20 m-ish SAR grid in another CRS covering the scene with a margin.
    left, bottom, right, top = transform_bounds(
        h.UTM32,
        crs,
        500000.0 - 200,
        5200000.0 - h.H * 10 - 200,
        500000.0 + h.W * 10 + 200,
        5200200.0,
    )
    res = 20.0 if crs != "EPSG:4326" else 20.0 / 111000
    cols, rows = math.ceil((right - left) / res), math.ceil((top - bottom) / res)
    s1 = h.write_tif(
        tmp_path / "s1_other.tif",
        h.make_sar(rows, cols),
        crs=CRS.from_user_input(crs),
        transform=Affine(res, 0, left, 0, -res, top),
    )
    out_path = tmp_path / "o.tif"
    report = predict_scene(model, scene["s2"], s1, out_path, cfg(output_dtype="float32"))
    assert report["sar_coverage"] == 1.0
    out, meta = h.read(out_path)
    assert meta["crs"] == h.UTM32 and meta["transform"] == h.TRANSFORM
    ref, valid = h.reference(model, scene["s2"], s1)
    np.testing.assert_allclose(out[valid], ref[valid], atol=0.05, rtol=0)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_scene_without_crs(model, tmp_path, h):
    """SEN12MS-CR files without georeferencing: SAR on the same 10 m grid, output without CRS."""
    s2 = h.write_tif(
        tmp_path / "s2.tif",
        h.make_optical(64, 64, wedge=False),
        crs=None,
        transform=Affine.identity(),
    )
    s1 = h.write_tif(tmp_path / "s1.tif", h.make_sar(64, 64), crs=None, transform=Affine.identity())
    out_path = tmp_path / "o.tif"
    predict_scene(model, s2, s1, out_path, cfg(output_dtype="float32"))
    out, meta = h.read(out_path)
    assert meta["crs"] is None and meta["nodata"] is None
    ref, _ = h.reference(model, s2, s1)
    np.testing.assert_allclose(out, ref, atol=0.05, rtol=0)


def _break(kind: str, scene: dict[str, Path], tmp_path: Path, h) -> tuple[dict, str]:
    """A faulty variant of the scene and the text the error must contain."""
    s = dict(scene)
    if kind == "sar_elsewhere":
        far = Affine(40.0, 0.0, 700000.0, 0.0, -40.0, 5200000.0)
        s["s1"] = h.write_tif(tmp_path / "s1_far.tif", h.make_sar(28, 32), transform=far)
        return s, "s1_far.tif: SAR footprint .* does not overlap"
    if kind == "band_count":
        s["s2"] = h.write_tif(tmp_path / "five.tif", h.make_optical()[..., :5], nodata=0)
        return s, "five.tif: optical scene has 5 bands, expected 10"
    if kind == "sar_bands":
        s["s1"] = h.write_tif(tmp_path / "s1_3.tif", np.zeros((28, 32, 3), np.float32))
        return s, "s1_3.tif: SAR file has 3 bands"
    if kind == "unreadable":
        s["s2"] = tmp_path / "junk.tif"
        s["s2"].write_bytes(b"not a tiff at all" * 10)
        return s, "junk.tif: not a readable GeoTIFF"
    if kind == "missing":
        s["s1"] = tmp_path / "nowhere.tif"
        return s, "nowhere.tif: file does not exist"
    if kind == "output_is_input":
        s["out"] = scene["s2"]
        return s, "s2_cloudy.tif: product .* would overwrite the input file .*s2_cloudy.tif"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["sar_elsewhere", "band_count", "sar_bands", "unreadable", "missing", "output_is_input"],
)
def test_bad_input_errors_name_the_file_before_prediction(
    model, scene, tmp_path, monkeypatch, kind, h
):
    bad, pattern = _break(kind, scene, tmp_path, h)
    before = scene["s2"].read_bytes()

    def no_prediction(*args, **kwargs):
        raise AssertionError("predicted before the inputs were checked")

    monkeypatch.setattr(model, "predict_on_batch", no_prediction)
    with pytest.raises(ValueError, match=pattern):
        predict_scene(model, bad["s2"], bad["s1"], bad["out"], cfg())
    if kind != "output_is_input":  # all scenes are checked together, before any prediction
        with pytest.raises(ValueError, match=pattern):
            check_scenes(
                [
                    SceneSource("good", scene["s2"], scene["s1"]),
                    SceneSource("bad", Path(bad["s2"]), Path(bad["s1"])),
                ]
            )
    assert scene["s2"].read_bytes() == before


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_run_leaves_no_partial_output(model, scene, monkeypatch, existing, h):
    scene["out"].parent.mkdir(parents=True, exist_ok=True)
    if existing:
        scene["out"].write_bytes(b"previous result")
    calls = []
    real = model.predict_on_batch

    def fail_later(inputs):
        calls.append(1)
        if len(calls) > 4:  # after a full row of tiles has been written
            raise RuntimeError("interrupted")
        return real(inputs)

    monkeypatch.setattr(model, "predict_on_batch", fail_later)
    with pytest.raises(RuntimeError, match="interrupted"):
        predict_scene(model, scene["s2"], scene["s1"], scene["out"], cfg())
    if existing:
        assert scene["out"].read_bytes() == b"previous result"
    else:
        assert not scene["out"].exists()
    names = [p.name for p in scene["out"].parent.iterdir() if p.name != ".cloudfree.tif.lock"]
    assert names == (["cloudfree.tif"] if existing else [])  # no partial file (the lock stays)


@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_real_georeferenced_samples(model, real_samples_root, tmp_path, h):
    """Both georeferenced SEN12MS-CR triplets: 13-band L1C + S1 at 10 m in UTM."""
    cloudy = sorted(real_samples_root.glob("ROIs*_s2_cloudy/*/*.tif"))
    done = 0
    for s2 in cloudy:
        with rasterio.open(s2) as ds:
            if ds.crs is None:
                continue
            crs, transform = ds.crs, ds.transform
        s1 = Path(str(s2).replace("_s2_cloudy", "_s1").replace("s2_cloudy_", "s1_"))
        out_path = tmp_path / f"{s2.stem}_clean.tif"
        report = predict_scene(model, s2, s1, out_path, cfg(tile_size=96, output_dtype="float32"))
        out, meta = h.read(out_path)
        assert meta["crs"] == crs and meta["transform"] == transform and meta["shape"] == (256, 256)
        assert report["bands_from"] == "count" and report["sar_coverage"] == 1.0
        ref, _ = h.reference(model, s2, s1)
        np.testing.assert_allclose(out, ref, atol=0.05, rtol=0)
        done += 1
    assert done == 2


def test_run_facts_are_stored_in_the_product(model, scene, h):
    """Provenance and the report's figures travel with the GeoTIFF (one JSON tag)."""
    report = predict_scene(model, scene["s2"], scene["s1"], scene["out"], cfg(batch_size=2))
    _, meta = h.read(scene["out"])
    facts = json.loads(meta["tags"][RUN_FACTS_TAG])
    assert facts == read_run_facts(scene["out"])
    assert {**facts, "output_path": str(scene["out"])} == report
    assert facts["s2_path"] == str(scene["s2"]) and facts["s1_path"] == str(scene["s1"])
    assert facts["receptive_field"] == 15 and facts["overlap"] == 16  # 1 block: 4 + 5 + 6
    assert facts["tile_grid"] == [2, 4] and facts["batch_size"] == 2
    assert facts["tiles_predicted"] + facts["tiles_skipped_nodata"] == facts["tiles"] == 8
    assert facts["mpx_per_s"] == pytest.approx(h.H * h.W / 1e6 / facts["seconds"], rel=0.01)


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_nan_and_inf_in_a_float_input_without_nodata_tag_are_nodata_out(
    model, scene, tmp_path, dtype, h
):
    """Defect 5 of issue 12: a float32 scene without a nodata tag had its NaN pixels predicted
    from invented values (0 in most bands, thousands of DN in others). A pixel NaN or +-inf in
    any band is nodata in the output, the same as a nodata-tagged pixel of the same scene."""
    dn = h.make_optical(wedge=False)  # every value >= 1: 0 is free to mark nodata
    bad = np.zeros((h.H, h.W), bool)
    bad[10:20, 30:44] = True  # NaN in one band only
    bad[50:53, 5:9] = True  # +inf / -inf
    floats = dn.astype(np.float32)
    floats[10:20, 30:44, 6] = np.nan
    floats[50:53, 5:7, 2] = np.inf
    floats[50:53, 7:9, 9] = -np.inf
    tagged = dn.copy()
    tagged[bad] = 0
    s2_float = h.write_tif(tmp_path / "float_no_tag.tif", floats)  # no nodata tag
    s2_tagged = h.write_tif(tmp_path / "uint16_tagged.tif", tagged, nodata=0)
    out_float, out_tagged = tmp_path / "from_float.tif", tmp_path / "from_tagged.tif"
    predict_scene(model, s2_float, scene["s1"], out_float, cfg(output_dtype=dtype))
    predict_scene(model, s2_tagged, scene["s1"], out_tagged, cfg(output_dtype=dtype))
    got, meta = h.read(out_float)
    want, _ = h.read(out_tagged)
    # valid pixels: as if tagged (float32 DN 0 is nodata of the tagged copy: nudged by 1e-45)
    np.testing.assert_allclose(got[~bad], want[~bad], atol=1e-6, rtol=0)
    if dtype == "uint16":
        assert meta["nodata"] == 0 and (got[bad] == 0).all() and (got[~bad] > 0).all()
    else:
        assert np.isnan(meta["nodata"]) and np.isnan(got[bad]).all()
        assert np.isfinite(got[~bad]).all()


# --- fill: clouds (issue 11, item 3) -----------------------------------------------------------


def _user_mask(tmp_path, h):
    mask = np.zeros((h.H, h.W, 1), np.uint8)
    mask[30:60, 35:75] = 1
    return h.write_tif(tmp_path / "user_mask.tif", mask)


def test_fill_clouds_keeps_clear_pixels_bit_identical_and_tiled_equals_whole(
    model, scene, tmp_path, h
):
    mask_path = _user_mask(tmp_path, h)
    config = cfg(fill="clouds", mask_path=str(mask_path), feather_px=4)
    predict_scene(model, scene["s2"], scene["s1"], scene["out"], config)
    out, _ = h.read(scene["out"])
    inputs, _ = h.read(scene["s2"])
    clear = np.ones((h.H, h.W), bool)
    clear[30:60, 35:75] = False
    assert np.array_equal(out[clear], inputs[clear])  # bit-identical, nodata included
    full, _ = h.read(
        predict_scene(model, scene["s2"], scene["s1"], tmp_path / "a.tif", cfg())["output_path"]
    )
    inner = np.zeros_like(clear)
    inner[34:56, 39:71] = True  # >= feather_px inside the mask edge: the prediction alone
    assert np.array_equal(out[inner], full[inner])
    edge = ~clear & ~inner
    assert (out[edge] != inputs[edge]).any() and (out[edge] != full[edge]).any()  # the ramp
    whole = cfg(fill="clouds", mask_path=str(mask_path), feather_px=4, tile_size=400)
    predict_scene(model, scene["s2"], scene["s1"], tmp_path / "whole.tif", whole)
    single, _ = h.read(tmp_path / "whole.tif")
    assert np.abs(single.astype(int) - out.astype(int)).max() <= 1  # as tiled == whole


def test_fill_clouds_without_a_mask_names_the_key(model, scene):
    with pytest.raises(SceneError, match="inference.fill: clouds needs"):
        predict_scene(model, scene["s2"], scene["s1"], scene["out"], cfg(fill="clouds"))
    assert not scene["out"].exists()


def test_gdal_cache_is_given_in_bytes(model, scene, monkeypatch):
    """rasterio.Env(GDAL_CACHEMAX=64) is a 64-byte cache, not 64 MB: the scene path converts."""
    import rasterio as rio

    from tml_cloudremoval.inference import scene as scene_module

    seen = []
    real = rio.Env

    def env(**options):
        seen.append(options.get("GDAL_CACHEMAX"))
        return real(**options)

    monkeypatch.setattr(scene_module.rasterio, "Env", env)
    predict_scene(model, scene["s2"], scene["s1"], scene["out"], cfg(gdal_cache_mb=64))
    assert seen == [64 * 2**20]
