"""The cloud/shadow mask raster: source, grid, values (detector and user mask)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from tml_cloudremoval.data.cloud_mask import cloud_shadow_mask
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.cog import cog_layout_faults
from tml_cloudremoval.inference.masks import (
    MASK_NODATA,
    mask_source,
    scene_mask,
    user_mask,
    write_mask,
)
from tml_cloudremoval.inference.reader import inspect_optical


def test_mask_source_and_none_without_13_bands(scene, tmp_path):
    info = inspect_optical(scene["s2"])  # 10 TML bands
    assert mask_source(info, None) is None and scene_mask(info, None) is None
    assert mask_source(info, tmp_path / "m.tif") == "mask_path"


def test_detector_mask_of_a_13_band_stack(tmp_path, h):
    rng = np.random.default_rng(4)
    dn = rng.integers(500, 3000, (h.H, h.W, 13)).astype(np.uint16)
    dn[20:50, 30:70] = 8000  # a bright cloud
    dn[0, 0] = 0
    path = h.write_tif(tmp_path / "s2_13.tif", dn, nodata=0)
    info = inspect_optical(path)
    assert mask_source(info, None) == "detector"
    mask = scene_mask(info, None)
    expected = cloud_shadow_mask(np.where((dn == 0).any(-1, keepdims=True), 0, dn))
    expected[0, 0] = MASK_NODATA
    assert np.array_equal(mask, expected) and mask[30, 50] == 1
    out = tmp_path / "mask.tif"
    write_mask(out, mask, info)
    assert cog_layout_faults(out) == []
    with rasterio.open(out) as ds:
        assert ds.dtypes[0] == "uint8" and ds.nodata == MASK_NODATA and ds.count == 1
        assert ds.transform == h.TRANSFORM and ds.crs == h.UTM32 and ds.shape == (h.H, h.W)
        assert ds.scales == (1.0,)
        assert np.array_equal(ds.read(1), mask)


def test_user_mask_on_another_grid_is_reprojected_nearest(scene, tmp_path, h):
    coarse = np.zeros((10, 10), np.uint8)
    coarse[2:4, 3:5] = 1  # 20 m pixels: rows 2..3 -> 10 m rows 4..7
    coarse[9, 9] = 7  # nonzero = cloud
    transform = Affine(20.0, 0.0, 500000.0, 0.0, -20.0, 5200000.0)
    path = h.write_tif(tmp_path / "user_mask.tif", coarse[..., None], transform=transform)
    mask = user_mask(path, inspect_optical(scene["s2"]))
    assert mask.shape == (h.H, h.W) and mask.dtype == np.uint8
    expected = np.full((h.H, h.W), MASK_NODATA, np.uint8)  # the user mask covers 20 x 20 px
    expected[:20, :20] = np.repeat(np.repeat((coarse != 0).astype(np.uint8), 2, 0), 2, 1)
    assert np.array_equal(mask, expected)


def test_user_mask_that_misses_the_scene_names_the_key(scene, tmp_path, h):
    far = Affine(10.0, 0.0, 900000.0, 0.0, -10.0, 5200000.0)
    path = h.write_tif(tmp_path / "far.tif", np.ones((5, 5, 1), np.uint8), transform=far)
    with pytest.raises(SceneError, match=r"inference.mask_path .*far.tif.*does not overlap"):
        user_mask(path, inspect_optical(scene["s2"]))
