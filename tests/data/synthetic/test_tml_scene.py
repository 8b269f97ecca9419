"""synthetic/tml_scene.py: the sample TML scene's files, grids, nodata and S1 offset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tml_cloudremoval.bands import S1_BAND_NAMES, TML_BAND_NAMES
from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.data.synthetic.s2_products import SCENE_PRODUCTS, scene_product_files
from tml_cloudremoval.data.synthetic.sample_folder import (
    MANIFEST_NAME,
    is_complete,
    write_sample_folder,
)
from tml_cloudremoval.data.synthetic.tml_scene import TML_SCENE_KIND, tml_scene
from tml_cloudremoval.inference.reader import inspect_optical, open_optical

TINY_SCENE = {
    "height": 96,
    "width": 80,
    "cloud_cover": 0.4,
    "land_cover_scale_px": 16.0,
    "cloud_scale_px": 20.0,
    "shadow_distance_px": [4.0, 8.0],
    "s1_offset_px": [6, 9],
}


def _read(path: Path) -> tuple[np.ndarray, rasterio.profiles.Profile, tuple]:
    with rasterio.open(path) as src:
        return np.moveaxis(src.read(), 0, -1), src.profile, src.descriptions


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scene") / "tml_scene"
    write_sample_folder(root, tml_scene(seed=7, **TINY_SCENE))
    return root


def test_tml_scene_files(tiny_scene: Path) -> None:
    cloudy, pc, dc = _read(tiny_scene / "s2_cloudy.tif")
    clear, pr, dr = _read(tiny_scene / "s2_clear.tif")
    s1, p1, d1 = _read(tiny_scene / "s1.tif")
    assert cloudy.shape == clear.shape == (96, 80, 10)
    assert cloudy.dtype == clear.dtype == np.uint16
    assert dc == dr == TML_BAND_NAMES and d1 == S1_BAND_NAMES
    assert pc["nodata"] == 0 and pr["nodata"] == 0 and np.isnan(p1["nodata"])
    assert pc["crs"] == pr["crs"] == p1["crs"] and pc["crs"].to_epsg() == 32632
    assert pc["transform"] == pr["transform"] and pc["transform"].a == 10.0
    # nodata wedge left of a slanted swath edge: all bands 0 together, wider at the top
    nodata = (cloudy == 0).all(axis=-1)
    assert ((cloudy == 0).any(axis=-1) == nodata).all() and (nodata == (clear == 0).all(-1)).all()
    assert nodata[0, 0] and not nodata[:, -1].any()
    assert nodata[0].sum() > nodata[-1].sum() > 0
    # clouds: the cloudy scene is brighter in blue on valid pixels
    b2 = TML_BAND_NAMES.index("B2")
    assert cloudy[..., b2][~nodata].mean() > clear[..., b2][~nodata].mean() + 300
    # S1: 40 m, float32 dB, covers the S2 extent, origin off the S2 40 m block grid
    t1, t2 = p1["transform"], pc["transform"]
    assert s1.dtype == np.float32 and (t1.a, t1.e) == (40.0, -40.0)
    assert (t1.c, t1.f) == (t2.c - 90.0, t2.f + 60.0)
    assert (t2.c - t1.c) % 40 != 0 and (t1.f - t2.f) % 40 != 0
    s1_right = t1.c + 40.0 * p1["width"]
    s1_bottom = t1.f - 40.0 * p1["height"]
    assert s1_right >= t2.c + 10.0 * 80 and s1_bottom <= t2.f - 10.0 * 96
    # NaN only in the S1 cells wholly outside the S2 extent (top row, first two columns)
    assert np.isnan(s1[0]).all() and np.isnan(s1[:, :2]).all()
    assert np.isfinite(s1[1:, 2:]).all()
    manifest = json.loads((tiny_scene / MANIFEST_NAME).read_text())
    tifs = ["s1.tif", "s2_clear.tif", "s2_cloudy.tif"]
    assert sorted(manifest["files"]) == sorted(tifs + scene_product_files())
    assert manifest["summary"]["s1_shape"] == [p1["height"], p1["width"]]
    assert is_complete(tiny_scene, TML_SCENE_KIND)


def test_tml_scene_skip_and_determinism(tiny_scene: Path, tmp_path: Path) -> None:
    assert write_sample_folder(tiny_scene, tml_scene(seed=7, **TINY_SCENE))["skipped"] is True
    other = tmp_path / "scene"
    write_sample_folder(other, tml_scene(seed=7, **TINY_SCENE))
    for name in ("s2_cloudy.tif", "s1.tif", "s2_clear.tif", *scene_product_files()):
        assert (tiny_scene / name).read_bytes() == (other / name).read_bytes(), name
    without = write_sample_folder(other, tml_scene(seed=7, **TINY_SCENE, write_clear=False))
    assert without["skipped"] is False and not (other / "s2_clear.tif").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"height": 8}, r"sample_data\.tml_scene\.height: must be >= 16"),
        ({"season": "monsoon"}, r"sample_data\.tml_scene\.season: expected one of"),
        ({"s1_offset_px": [-1, 0]}, r"sample_data\.tml_scene\.s1_offset_px: must be >= 0"),
        ({"cloud_cover": 1.2}, r"sample_data\.tml_scene\.cloud_cover: must be <= 1"),
        ({"write_clear": "yes"}, r"sample_data\.tml_scene\.write_clear: expected bool"),
    ],
)
def test_bad_settings_rejected_naming_the_key(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tml_scene(seed=1, **{**TINY_SCENE, **change})


def test_tml_scene_products_read_as_its_cloudy_stack(tiny_scene: Path) -> None:
    """The .SAFE (02.09), the zipped .SAFE (04.00, offset) and the TML layout of the sample
    scene read identically, on its grid, with its 10 m bands exactly as in s2_cloudy.tif."""
    stack = inspect_optical(tiny_scene / "s2_cloudy.tif")
    with open_optical(stack) as reader:
        expected, expected_valid = reader.read_tile(0, 0, stack.height, stack.width)
    tiles = []
    for name in SCENE_PRODUCTS.values():
        info = inspect_optical(tiny_scene / name)
        assert (info.crs, info.transform, info.height) == (stack.crs, stack.transform, 96)
        with open_optical(info) as reader:
            tiles.append(reader.read_tile(0, 0, info.height, info.width))
    for optical, valid in tiles:
        np.testing.assert_array_equal(optical, tiles[0][0])
        np.testing.assert_array_equal(valid, expected_valid)
    ten_m = [TML_BAND_NAMES.index(b) for b in ("B2", "B3", "B4", "B8")]
    np.testing.assert_array_equal(tiles[0][0][..., ten_m], expected[..., ten_m])
