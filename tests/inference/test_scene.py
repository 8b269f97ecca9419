"""Scene path: GeoTIFF in, georeferenced GeoTIFF out; checks, nodata, SAR warp, atomic writes."""

from __future__ import annotations

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
from tml_cloudremoval.inference.tiling import predict_scene

from tml_cloudremoval.bands import S2_BAND_NAMES, TML_BAND_NAMES, tml_band_indices
from tml_cloudremoval.inference.scene import (
    SceneWriter,
    band_names_from_descriptions,
    check_scenes,
    find_scene_pairs,
    inspect_optical,
)
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.normalise import normalise_optical, normalise_sar
from tml_cloudremoval.raster import write_geotiff_atomic
from tml_cloudremoval.sar import fill_nan_with_channel_mean, sar_to_40m, warp_sar_to_grid

UTM32 = CRS.from_epsg(32632)
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5200000.0)
H, W = 92, 108  # multiples of 4: the whole-image reference needs no padding
TILE = 48  # 2 x 4 tiles of 56 x 40 px (budget 48 x 48) with the tiny model's overlap of 16


def write_tif(path, array, crs=UTM32, transform=TRANSFORM, nodata=None, descriptions=None):
    return write_geotiff_atomic(
        path, array, crs=crs, transform=transform, nodata=nodata, descriptions=descriptions
    )


def make_optical(height=H, width=W, seed=0, wedge=True) -> np.ndarray:
    """(H, W, 10) uint16 DN: smooth land plus a bright cloud, 0 (nodata) left of a slanted edge."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 800 + 400 * np.sin(xx / 9.0)[..., None] + 300 * np.cos(yy / 7.0)[..., None]
    dn = base + rng.normal(0, 60, (height, width, 10)) + np.arange(10) * 150
    cloud = np.exp(-(((yy - height / 2) / 15.0) ** 2 + ((xx - width / 2) / 20.0) ** 2))
    dn = np.clip(dn + 6000 * cloud[..., None], 1, 10000).astype(np.uint16)
    if wedge:
        dn[xx < 20 - yy / 5] = 0
    return dn


def make_sar(height, width, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vv = rng.uniform(-20, -5, (height, width))
    vh = vv - rng.uniform(5, 10, (height, width))
    return np.stack([vv, vh], axis=-1).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(2)
    return build_dsen2cr(features=8, blocks=1)


@pytest.fixture
def scene(tmp_path) -> dict[str, Path]:
    """A georeferenced scene: 10 TML bands with nodata 0, SAR at 40 m on a shifted grid."""
    s2 = write_tif(tmp_path / "s2_cloudy.tif", make_optical(), nodata=0)
    sar = make_sar(28, 32)
    sar[3:6, 4:8] = np.nan
    s1_transform = Affine(40.0, 0.0, 500000.0 - 60.0, 0.0, -40.0, 5200000.0 + 90.0)
    s1 = write_tif(tmp_path / "s1.tif", sar, transform=s1_transform, nodata=float("nan"))
    return {"s2": s2, "s1": s1, "out": tmp_path / "out" / "cloudfree.tif"}


def reference(model, s2_path, s1_path) -> tuple[np.ndarray, np.ndarray]:
    """Whole-image prediction, built independently of the tiling code: (DN float, valid)."""
    with rasterio.open(s2_path) as ds:
        data = np.moveaxis(ds.read(), 0, -1)
        nodata, crs, transform = ds.nodata, ds.crs, ds.transform
    names = band_names_from_descriptions(inspect_optical(s2_path).header.descriptions)
    if names is None:
        names = TML_BAND_NAMES if data.shape[-1] == 10 else S2_BAND_NAMES
    data = data[..., tml_band_indices(names)]
    valid = np.ones(data.shape[:2], bool) if nodata is None else ~(data == nodata).any(axis=-1)
    optical = normalise_optical(np.where(valid[..., None], data, 0))
    h, w = data.shape[:2]
    if crs is None:
        with rasterio.open(s1_path) as ds:
            sar = sar_to_40m(np.moveaxis(ds.read(), 0, -1))
    else:
        sar = warp_sar_to_grid(s1_path, crs, transform @ Affine.scale(4), h // 4, w // 4)
    sar = normalise_sar(fill_nan_with_channel_mean(sar))
    pred = model.predict_on_batch({"optical": optical[None], "sar": sar[None]})[0]
    return np.clip(pred * 2000.0, 0, 10000), valid


def read(path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as ds:
        meta = {
            "crs": ds.crs,
            "transform": ds.transform,
            "shape": (ds.height, ds.width),
            "count": ds.count,
            "nodata": ds.nodata,
            "dtype": ds.dtypes[0],
            "descriptions": ds.descriptions,
            "tiled": ds.profile.get("tiled"),
            "compress": ds.compression,
        }
        return np.moveaxis(ds.read(), 0, -1), meta


def test_tiled_scene_equals_whole_image_and_keeps_nodata(model, scene):
    report = predict_scene(
        model,
        scene["s2"],
        scene["s1"],
        scene["out"],
        tile_size=TILE,
        output_dtype="float32",
        progress=False,
    )
    out, meta = read(scene["out"])
    ref, valid = reference(model, scene["s2"], scene["s1"])
    assert (~valid).sum() > 50  # the wedge is there
    np.testing.assert_allclose(out[valid], ref[valid], atol=0.05, rtol=0)
    assert (out[~valid] == 0).all()
    assert report["tiles"] == 8 and report["height"] == H and report["width"] == W
    assert report["tile_grid"] == [2, 4] and report["largest_tile"] == [56, 40]
    assert 0 < report["sar_coverage"] < 1  # the NaN hole in the SAR
    assert meta["dtype"] == "float32" and meta["nodata"] == 0


def test_output_georeferencing_uint16(model, scene):
    predict_scene(model, scene["s2"], scene["s1"], scene["out"], tile_size=TILE, progress=False)
    out, meta = read(scene["out"])
    assert meta["crs"] == UTM32 and meta["transform"] == TRANSFORM
    assert meta["shape"] == (H, W) and meta["count"] == 10 and meta["dtype"] == "uint16"
    assert meta["nodata"] == 0 and meta["descriptions"] == TML_BAND_NAMES
    assert meta["tiled"] and meta["compress"].name.lower() == "deflate"
    ref, valid = reference(model, scene["s2"], scene["s1"])
    assert (out[~valid] == 0).all()  # nodata stays nodata ...
    assert (out[valid] > 0).all()  # ... and is never produced where there is data
    assert np.abs(out[valid].astype(float) - np.rint(ref[valid])).max() <= 1
    assert not list(scene["out"].parent.glob(".*tmp"))  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(scene["out"].stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_13_band_stack_and_band_names_from_descriptions(model, scene, tmp_path):
    tml = make_optical()
    stack = np.full((H, W, 13), 4321, np.uint16)
    stack[..., tml_band_indices(S2_BAND_NAMES)] = tml
    s2_13 = write_tif(tmp_path / "l1c.tif", stack, nodata=0)
    order = [9, 3, 0, 1, 2, 4, 5, 6, 7, 8]  # shuffled bands, named "B02"-style
    named = [f"B{n[1:].zfill(2)}" if n[-1] != "A" else n for n in TML_BAND_NAMES]
    s2_named = write_tif(
        tmp_path / "named.tif", tml[..., order], nodata=0, descriptions=[named[i] for i in order]
    )
    outs = []
    for i, s2 in enumerate((scene["s2"], s2_13, s2_named)):
        out_path = tmp_path / f"o{i}.tif"
        report = predict_scene(model, s2, scene["s1"], out_path, tile_size=TILE, progress=False)
        outs.append(read(out_path)[0])
        assert report["bands_from"] == ("descriptions" if i == 2 else "count")
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:32633"])
def test_sar_in_another_crs_and_resolution(model, scene, tmp_path, crs):
    # A 20 m-ish SAR grid in another CRS covering the scene with a margin.
    left, bottom, right, top = transform_bounds(
        UTM32, crs, 500000.0 - 200, 5200000.0 - H * 10 - 200, 500000.0 + W * 10 + 200, 5200200.0
    )
    res = 20.0 if crs != "EPSG:4326" else 20.0 / 111000
    w, h = math.ceil((right - left) / res), math.ceil((top - bottom) / res)
    s1 = write_tif(
        tmp_path / "s1_other.tif",
        make_sar(h, w),
        crs=CRS.from_user_input(crs),
        transform=Affine(res, 0, left, 0, -res, top),
    )
    out_path = tmp_path / "o.tif"
    report = predict_scene(
        model, scene["s2"], s1, out_path, tile_size=TILE, output_dtype="float32", progress=False
    )
    assert report["sar_coverage"] == 1.0
    out, meta = read(out_path)
    assert meta["crs"] == UTM32 and meta["transform"] == TRANSFORM
    ref, valid = reference(model, scene["s2"], s1)
    np.testing.assert_allclose(out[valid], ref[valid], atol=0.05, rtol=0)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_scene_without_crs(model, tmp_path):
    """SEN12MS-CR files without georeferencing: SAR on the same 10 m grid, output without CRS."""
    s2 = write_tif(
        tmp_path / "s2.tif",
        make_optical(64, 64, wedge=False),
        crs=None,
        transform=Affine.identity(),
    )
    s1 = write_tif(tmp_path / "s1.tif", make_sar(64, 64), crs=None, transform=Affine.identity())
    out_path = tmp_path / "o.tif"
    predict_scene(model, s2, s1, out_path, tile_size=TILE, output_dtype="float32", progress=False)
    out, meta = read(out_path)
    assert meta["crs"] is None and meta["nodata"] is None
    ref, _ = reference(model, s2, s1)
    np.testing.assert_allclose(out, ref, atol=0.05, rtol=0)


def _break(kind: str, scene: dict[str, Path], tmp_path: Path) -> tuple[dict, str]:
    """A faulty variant of the scene and the text the error must contain."""
    s = dict(scene)
    if kind == "sar_elsewhere":
        far = Affine(40.0, 0.0, 700000.0, 0.0, -40.0, 5200000.0)
        s["s1"] = write_tif(tmp_path / "s1_far.tif", make_sar(28, 32), transform=far)
        return s, "s1_far.tif: SAR footprint .* does not overlap"
    if kind == "band_count":
        s["s2"] = write_tif(tmp_path / "five.tif", make_optical()[..., :5], nodata=0)
        return s, "five.tif: optical scene has 5 bands, expected 10"
    if kind == "sar_bands":
        s["s1"] = write_tif(tmp_path / "s1_3.tif", np.zeros((28, 32, 3), np.float32))
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
        return s, "s2_cloudy.tif: output path is an input file"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["sar_elsewhere", "band_count", "sar_bands", "unreadable", "missing", "output_is_input"],
)
def test_bad_input_errors_name_the_file_before_prediction(
    model, scene, tmp_path, monkeypatch, kind
):
    bad, pattern = _break(kind, scene, tmp_path)
    before = scene["s2"].read_bytes()

    def no_prediction(*args, **kwargs):
        raise AssertionError("predicted before the inputs were checked")

    monkeypatch.setattr(model, "predict_on_batch", no_prediction)
    with pytest.raises(ValueError, match=pattern):
        predict_scene(model, bad["s2"], bad["s1"], bad["out"], tile_size=TILE, progress=False)
    # all scenes are checked together: the good first scene is not predicted either
    with pytest.raises(ValueError, match=pattern):
        check_scenes(
            [(scene["s2"], scene["s1"], tmp_path / "ok.tif"), (bad["s2"], bad["s1"], bad["out"])]
        )
    assert scene["s2"].read_bytes() == before
    assert not (tmp_path / "ok.tif").exists()


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_run_leaves_no_partial_output(model, scene, monkeypatch, existing):
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
        predict_scene(model, scene["s2"], scene["s1"], scene["out"], tile_size=TILE, progress=False)
    if existing:
        assert scene["out"].read_bytes() == b"previous result"
    else:
        assert not scene["out"].exists()
    assert [p.name for p in scene["out"].parent.iterdir()] == (
        ["cloudfree.tif"] if existing else []
    )


def test_writer_buffers_rows_to_whole_blocks(tmp_path):
    info = inspect_optical(write_tif(tmp_path / "like.tif", np.zeros((600, 70, 10), np.uint16)))
    rng = np.random.default_rng(4)
    data = rng.integers(1, 10000, (600, 70, 10)).astype(np.uint16)
    path = tmp_path / "w.tif"
    with SceneWriter(path, info, dtype="uint16", nodata=0) as writer:
        for y0, y1 in ((0, 356), (356, 400), (400, 401), (401, 600)):  # direct + buffered
            writer.write_rows(y0, data[y0:y1])
        with pytest.raises(ValueError, match="in order"):
            writer.write_rows(5, data[:1])
    np.testing.assert_array_equal(read(path)[0], data)
    with pytest.raises(RuntimeError, match="only 100 of 600 rows"):
        with SceneWriter(tmp_path / "short.tif", info) as writer:
            writer.write_rows(0, data[:100])
    assert not (tmp_path / "short.tif").exists()


def test_find_scene_pairs(tmp_path):
    for name in ("a_s2_cloudy.tif", "a_s1.tif", "b_s2_cloudy.tiff", "b_s1.tif", "x_s2_clear.tif"):
        (tmp_path / name).touch()
    pairs = find_scene_pairs(tmp_path, "s2_cloudy", "s1")
    assert [(i, s2.name, s1.name) for i, s2, s1 in pairs] == [
        ("a_", "a_s2_cloudy.tif", "a_s1.tif"),
        ("b_", "b_s2_cloudy.tiff", "b_s1.tif"),
    ]
    (tmp_path / "c_s2_cloudy.tif").touch()
    with pytest.raises(ValueError, match="c_s2_cloudy.tif: no SAR partner c_s1.tif"):
        find_scene_pairs(tmp_path, "s2_cloudy", "s1")
    with pytest.raises(ValueError, match="no optical scene"):
        find_scene_pairs(tmp_path, "s2_none", "s1")


def test_quicklook_png(model, scene, tmp_path):
    import matplotlib.image

    from tml_cloudremoval.inference.quicklook import write_quicklook

    predict_scene(model, scene["s2"], scene["s1"], scene["out"], tile_size=TILE, progress=False)
    png = write_quicklook(scene["s2"], scene["out"], tmp_path / "ql" / "q.png", max_size=50)
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 100
    assert not list(png.parent.glob(".*tmp"))


@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_real_georeferenced_samples(model, real_samples_root, tmp_path):
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
        report = predict_scene(
            model, s2, s1, out_path, tile_size=96, output_dtype="float32", progress=False
        )
        out, meta = read(out_path)
        assert meta["crs"] == crs and meta["transform"] == transform and meta["shape"] == (256, 256)
        assert report["bands_from"] == "count" and report["sar_coverage"] == 1.0
        ref, _ = reference(model, s2, s1)
        np.testing.assert_allclose(out, ref, atol=0.05, rtol=0)
        done += 1
    assert done == 2


def test_to_output_matches_normalise_and_keeps_nodata_distinct():
    from tml_cloudremoval.inference.scene import to_output
    from tml_cloudremoval.normalise import (
        OPTICAL_CLIP_DN,
        denormalise_optical,
        optical_to_dn_uint16,
    )

    rng = np.random.default_rng(5)
    values = rng.uniform(-0.5, 5.5, (7, 9, 10)).astype(np.float32)
    values[0, 0] = 0.0
    valid = np.ones((7, 9), bool)
    valid[3] = False
    out = to_output(values, valid, "uint16", 0.0)
    expected = optical_to_dn_uint16(values)
    expected[expected == 0] = 1  # valid DN 0 (e.g. negative predictions) would read as nodata
    np.testing.assert_array_equal(out[valid], expected[valid])
    assert (out[~valid] == 0).all()
    out = to_output(values, None, "float32", None)
    np.testing.assert_array_equal(out, np.clip(denormalise_optical(values), *OPTICAL_CLIP_DN))


def test_every_fault_is_reported_at_once(scene, tmp_path):
    with pytest.raises(ValueError) as info:
        check_scenes(
            [
                (tmp_path / "missing.tif", scene["s1"], scene["s1"]),
                (scene["s2"], scene["s1"], tmp_path / "same.tif"),
                (scene["s2"], scene["s1"], tmp_path / "same.tif"),
            ]
        )
    text = str(info.value)
    assert "3 fault(s)" in text and "nothing was predicted" in text
    assert "missing.tif: file does not exist" in text
    assert "s1.tif: output path is an input file" in text
    assert "same.tif: output path is used by two scenes" in text


@pytest.mark.parametrize(("compress", "expected"), [("zstd", "zstd"), ("none", None)])
def test_writer_compression_option(tmp_path, compress, expected):
    info = inspect_optical(write_tif(tmp_path / "like.tif", np.zeros((40, 30, 10), np.uint16)))
    data = np.arange(40 * 30 * 10, dtype=np.uint16).reshape(40, 30, 10)
    with SceneWriter(tmp_path / "c.tif", info, compress=compress) as writer:
        writer.write_rows(0, data)
    with rasterio.open(tmp_path / "c.tif") as ds:
        assert (ds.compression.name.lower() if ds.compression else None) == expected
        np.testing.assert_array_equal(np.moveaxis(ds.read(), 0, -1), data)


def test_read_tile_matches_normalise_optical_and_pads(scene):
    from tml_cloudremoval.inference.scene import open_optical

    info = inspect_optical(scene["s2"])
    dn = make_optical()
    with open_optical(info) as reader:
        optical, valid = reader.read_tile(80, 100, 16, 12)  # runs past the scene edge
    expected_valid = ~(dn == 0).any(axis=-1)
    expected = normalise_optical(np.where(expected_valid[..., None], dn, 0))
    np.testing.assert_array_equal(optical[:12, :8], expected[80:, 100:])
    np.testing.assert_array_equal(valid[:12, :8], expected_valid[80:, 100:])
    np.testing.assert_array_equal(optical[12:, :8], np.repeat(expected[-1:, 100:], 4, axis=0))
    assert optical.shape == (16, 12, 10) and optical.dtype == np.float32
