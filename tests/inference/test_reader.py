"""Scene reader: band discovery, header checks, windowed reads in model units, SAR at 40 m."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from tml_cloudremoval.inference.reader import (
    band_names_from_descriptions,
    inspect_optical,
    inspect_scene,
    load_sar_40m,
    nodata_mask,
    open_optical,
)
from tml_cloudremoval.normalise import normalise_optical
from tml_cloudremoval.raster import RasterError


def test_band_names_from_descriptions():
    assert band_names_from_descriptions(["B2", "b02", "B8A (nir)", " B11"]) == [
        "B2",
        "B2",
        "B8A",
        "B11",
    ]
    assert band_names_from_descriptions(["B2", None]) is None
    assert band_names_from_descriptions(["red"]) is None


def test_nodata_mask():
    data = np.array([[[1, 0], [3, 3]], [[5, 5], [0, 0]]], np.uint16)
    np.testing.assert_array_equal(nodata_mask(data, 0), [[True, False], [False, True]])
    assert nodata_mask(data, None) is None
    floats = data.astype(np.float32)
    floats[0, 1, 0] = np.nan
    np.testing.assert_array_equal(nodata_mask(floats, None), [[False, True], [False, False]])
    floats[1, 0, 1], floats[1, 1, 0] = np.inf, -np.inf  # inf is no reflectance either
    np.testing.assert_array_equal(nodata_mask(floats, None), [[False, True], [True, True]])


def test_inspect_scene_reports_optical_and_sar_faults_together(tmp_path, h):
    bad_s2 = h.write_tif(tmp_path / "five.tif", np.zeros((8, 8, 5), np.uint16))
    pair, faults = inspect_scene(bad_s2, tmp_path / "none.tif")
    assert pair is None and len(faults) == 2
    assert "five.tif: optical scene has 5 bands" in faults[0]
    assert "none.tif: file does not exist" in faults[1]


def test_sar_coverage_and_fill(scene):
    pair, faults = inspect_scene(scene["s2"], scene["s1"])
    assert not faults
    sar, coverage = load_sar_40m(pair)
    assert sar.shape == (23, 27, 2) and np.isfinite(sar).all()
    assert 0 < coverage < 1  # the NaN hole of the fixture


def test_sar_without_any_valid_pixel_is_refused(scene, tmp_path, h):
    far = Affine(40.0, 0.0, 500000.0, 0.0, -40.0, 5200000.0)
    empty = h.write_tif(
        tmp_path / "nan.tif", np.full((28, 32, 2), np.nan, np.float32), transform=far, nodata=None
    )
    pair, _ = inspect_scene(scene["s2"], empty)
    with pytest.raises(RasterError, match="nan.tif: SAR holds no valid pixel"):
        load_sar_40m(pair)


def test_read_tile_matches_normalise_optical_and_pads(scene, h):
    info = inspect_optical(scene["s2"])
    dn = h.make_optical()
    with open_optical(info) as reader:
        optical, valid = reader.read_tile(80, 100, 16, 12)  # runs past the scene edge
    expected_valid = ~(dn == 0).any(axis=-1)
    expected = normalise_optical(np.where(expected_valid[..., None], dn, 0))
    np.testing.assert_array_equal(optical[:12, :8], expected[80:, 100:])
    np.testing.assert_array_equal(valid[:12, :8], expected_valid[80:, 100:])
    np.testing.assert_array_equal(optical[12:, :8], np.repeat(expected[-1:, 100:], 4, axis=0))
    assert optical.shape == (16, 12, 10) and optical.dtype == np.float32


def test_a_stack_states_its_radiometry_by_tag_or_band_scale(scene, h, tmp_path):
    """RADIO_ADD_OFFSET tag, or GDAL band scale/offset (reflectance = DN x 1e-4 - 0.1), give
    dn_offset -1000 under auto; without either, auto is 0; an int applies to a bare file."""
    import rasterio

    plain = inspect_optical(scene["s2"])
    assert plain.radiometry.offsets == (0.0,) * 10 and "auto" in plain.radiometry.reason
    with open_optical(plain) as reader:
        expected, valid = reader.read_tile(0, 0, h.H, h.W)
    shifted = np.where(h.make_optical() > 0, h.make_optical() + 1000, 0).astype(np.uint16)
    tagged = h.write_tif(tmp_path / "tagged.tif", shifted, nodata=0)
    with rasterio.open(tagged, "r+") as ds:
        ds.update_tags(RADIO_ADD_OFFSET="-1000")
    scaled = h.write_tif(tmp_path / "scaled.tif", shifted, nodata=0)
    with rasterio.open(scaled, "r+") as ds:
        ds.scales, ds.offsets = (1e-4,) * 10, (-0.1,) * 10
    bare = h.write_tif(tmp_path / "bare.tif", shifted, nodata=0)
    for path, dn_offset in ((tagged, "auto"), (scaled, "auto"), (bare, -1000)):
        info = inspect_optical(path, dn_offset=dn_offset)
        np.testing.assert_allclose(info.radiometry.offsets, -1000.0)
        with open_optical(info) as reader:
            got, got_valid = reader.read_tile(0, 0, h.H, h.W)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        np.testing.assert_array_equal(got_valid, valid)
